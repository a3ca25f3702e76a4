-- Articles whose embeddings must be brought up to date (upserted or removed) in the embeddings module. The indexer
-- queues them in its event's transaction and calls the embeddings module after the commit, never inside it (an
-- embedded install has one database connection: a call that writes while a transaction holds it would wait forever).
-- A claimed row is leased (next_attempt_at moves ahead), so a replica that dies mid-call leaves it to another.
CREATE TABLE kb_embedding_queue (
	article_id uuid PRIMARY KEY,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX kb_embedding_queue_due_idx ON kb_embedding_queue (next_attempt_at);
