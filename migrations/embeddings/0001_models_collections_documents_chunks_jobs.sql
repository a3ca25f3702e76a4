-- Embeddings: models (the built-in local-hash, shared by every organization, or an organization's AI deployment),
-- collections bound to one model, documents by source id with a content hash, their chunks with an embedding and a
-- tsvector, and durable jobs (mixins/jobs.mixin.ts). emb_chunks.embedding is an untyped vector so one table holds
-- every dimension; each model gets its own partial HNSW index over `embedding::vector(N)` (pgvector's way to mix
-- dimensions in one column), created with the model (services/embeddings/vector-index.ts).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE emb_models (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	-- NULL: built in, every organization's.
	organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	kind text NOT NULL CHECK (kind IN ('local', 'deployment')),
	-- kind deployment: the AI deployment's name (ai.embed's model).
	deployment text,
	dimensions integer NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((kind = 'deployment') = (deployment IS NOT NULL))
);
CREATE UNIQUE INDEX emb_models_org_name ON emb_models (organization_id, name);
CREATE UNIQUE INDEX emb_models_builtin_name ON emb_models (name) WHERE organization_id IS NULL;

INSERT INTO emb_models (id, organization_id, name, kind, dimensions)
VALUES ('00000000-0000-4000-8000-000000000384', NULL, 'local-hash', 'local', 384);

CREATE TABLE emb_collections (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	description text NOT NULL DEFAULT '',
	-- The model searches use; during a re-embed pending_model_id is being filled, then replaces it in one transaction.
	model_id uuid NOT NULL REFERENCES emb_models (id),
	pending_model_id uuid REFERENCES emb_models (id),
	reembed_job_id uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);

CREATE TABLE emb_documents (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	collection_id uuid NOT NULL REFERENCES emb_collections (id) ON DELETE CASCADE,
	source_id text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 500),
	title text NOT NULL DEFAULT '',
	kind text NOT NULL DEFAULT 'prose' CHECK (kind IN ('prose', 'markdown', 'code')),
	language text,
	path text,
	metadata jsonb NOT NULL DEFAULT '{}',
	text text NOT NULL,
	-- sha256 of what is chunked and embedded (text, kind, language, path, title): equal hash, nothing re-embedded.
	content_hash text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (collection_id, source_id)
);
CREATE INDEX emb_documents_org ON emb_documents (organization_id, collection_id);

CREATE TABLE emb_chunks (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	collection_id uuid NOT NULL REFERENCES emb_collections (id) ON DELETE CASCADE,
	document_id uuid NOT NULL REFERENCES emb_documents (id) ON DELETE CASCADE,
	-- The model (a generation) the embedding is of: a re-embed adds the new model's chunks beside the old ones.
	model_id uuid NOT NULL REFERENCES emb_models (id),
	-- The document's content_hash the chunk was made from (a resumed job skips documents already done).
	content_hash text NOT NULL,
	index integer NOT NULL,
	text text NOT NULL,
	tokens integer NOT NULL,
	heading text,
	symbol text,
	-- Copied from the document so a filter is applied in the same scan as the vector order.
	metadata jsonb NOT NULL DEFAULT '{}',
	embedding vector NOT NULL,
	tsv tsvector NOT NULL,
	UNIQUE (document_id, model_id, index)
);
CREATE INDEX emb_chunks_collection ON emb_chunks (collection_id, model_id);
CREATE INDEX emb_chunks_tsv ON emb_chunks USING gin (tsv);
CREATE INDEX emb_chunks_metadata ON emb_chunks USING gin (metadata jsonb_path_ops);
CREATE INDEX emb_chunks_hnsw_00000000000040008000000000000384 ON emb_chunks
	USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
	WHERE model_id = '00000000-0000-4000-8000-000000000384';

CREATE TABLE emb_jobs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	collection_id uuid REFERENCES emb_collections (id) ON DELETE CASCADE,
	kind text NOT NULL CHECK (kind IN ('ingest', 'reembed')),
	status text NOT NULL DEFAULT 'queued'
		CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
	payload jsonb NOT NULL DEFAULT '{}',
	-- Where a resumed job continues (its steps are idempotent, so redoing the step a dead replica was in is safe).
	cursor jsonb,
	done integer NOT NULL DEFAULT 0,
	total integer NOT NULL DEFAULT 0,
	error text,
	created_by uuid,
	-- The replica working on it and until when its claim holds without a heartbeat.
	lease_owner text,
	lease_until timestamptz,
	attempts integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz
);
CREATE INDEX emb_jobs_claim ON emb_jobs (status, created_at) WHERE status IN ('queued', 'running');
CREATE INDEX emb_jobs_org ON emb_jobs (organization_id, collection_id, created_at);
