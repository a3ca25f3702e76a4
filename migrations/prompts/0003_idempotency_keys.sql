-- Answers of prompts.complete called with an idempotency key (lib/idempotency.ts): a call repeated with the key within
-- the retention window gets the first answer instead of a second completion.
CREATE TABLE prompts_idempotency_keys (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	key text NOT NULL,
	result jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, key)
);
