-- prompts experiments: renders of a template's label split between versions (variants) by weight, each subject
-- always seeing the same variant, until a significance test calls a winner (promoted to the label) or someone stops it.
CREATE TABLE prompts_experiments (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	template_id uuid NOT NULL REFERENCES prompts_templates (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	label text NOT NULL CHECK (label ~ '^[a-z][a-z0-9_-]{0,49}$'),
	metric text NOT NULL CHECK (metric IN ('success', 'feedback', 'latency', 'cost')),
	min_samples integer NOT NULL CHECK (min_samples > 0),
	confidence real NOT NULL CHECK (confidence > 0 AND confidence < 1),
	sticky_by text NOT NULL CHECK (sticky_by IN ('user', 'session')),
	status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'stopped')),
	winner_variant_id uuid,
	started_by uuid REFERENCES users (id) ON DELETE SET NULL,
	started_at timestamptz NOT NULL DEFAULT now(),
	ended_at timestamptz
);
-- One running experiment per (template, label).
CREATE UNIQUE INDEX prompts_experiments_running ON prompts_experiments (template_id, label) WHERE status = 'running';
CREATE INDEX prompts_experiments_org ON prompts_experiments (organization_id, started_at DESC);

CREATE TABLE prompts_variants (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	experiment_id uuid NOT NULL REFERENCES prompts_experiments (id) ON DELETE CASCADE,
	version_id uuid NOT NULL REFERENCES prompts_versions (id) ON DELETE CASCADE,
	weight real NOT NULL CHECK (weight > 0),
	position integer NOT NULL,
	UNIQUE (experiment_id, version_id),
	UNIQUE (experiment_id, position)
);

ALTER TABLE prompts_experiments ADD FOREIGN KEY (winner_variant_id) REFERENCES prompts_variants (id) ON DELETE SET NULL;
ALTER TABLE prompts_executions ADD FOREIGN KEY (experiment_id) REFERENCES prompts_experiments (id) ON DELETE SET NULL;
ALTER TABLE prompts_executions ADD FOREIGN KEY (variant_id) REFERENCES prompts_variants (id) ON DELETE SET NULL;
CREATE INDEX prompts_executions_experiment ON prompts_executions (experiment_id, variant_id, created_at)
	WHERE experiment_id IS NOT NULL;
