-- prompts: versioned chat templates. A template of an organization, or a shared one (organization_id NULL) that every
-- organization sees unless it overrides it with its own template of the same name (overrides_template_id).
-- Names kept for the experiments: prompts_experiments, prompts_variants.
CREATE TABLE prompts_templates (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'),
	description text NOT NULL DEFAULT '',
	tags text[] NOT NULL DEFAULT '{}',
	overrides_template_id uuid REFERENCES prompts_templates (id) ON DELETE CASCADE,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- Only an organization overrides, and only a shared template.
	CHECK (overrides_template_id IS NULL OR organization_id IS NOT NULL)
);
CREATE UNIQUE INDEX prompts_templates_org_name ON prompts_templates (organization_id, name) WHERE organization_id IS NOT NULL;
CREATE UNIQUE INDEX prompts_templates_shared_name ON prompts_templates (name) WHERE organization_id IS NULL;
CREATE INDEX prompts_templates_overrides ON prompts_templates (overrides_template_id) WHERE overrides_template_id IS NOT NULL;

-- Immutable: written once, never updated (the trigger below); removed only with their template.
CREATE TABLE prompts_versions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	template_id uuid NOT NULL REFERENCES prompts_templates (id) ON DELETE CASCADE,
	number integer NOT NULL CHECK (number > 0),
	messages jsonb NOT NULL,
	variables jsonb NOT NULL DEFAULT '[]',
	model_settings jsonb NOT NULL DEFAULT '{}',
	note text NOT NULL DEFAULT '',
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (template_id, number),
	UNIQUE (id, template_id)
);

CREATE FUNCTION prompts_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'prompt versions are immutable' USING ERRCODE = 'P0001';
END $$;
CREATE TRIGGER prompts_versions_no_update BEFORE UPDATE ON prompts_versions
	FOR EACH ROW EXECUTE FUNCTION prompts_versions_immutable();

-- Movable pointers at a version of the same template.
CREATE TABLE prompts_labels (
	template_id uuid NOT NULL REFERENCES prompts_templates (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,49}$'),
	version_id uuid NOT NULL,
	protected boolean NOT NULL DEFAULT false,
	updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (template_id, name),
	FOREIGN KEY (version_id, template_id) REFERENCES prompts_versions (id, template_id) ON DELETE CASCADE
);

-- Every move of a label (to_version_id NULL: removed), newest last: history, and what a rollback goes back to.
CREATE TABLE prompts_label_moves (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	template_id uuid NOT NULL REFERENCES prompts_templates (id) ON DELETE CASCADE,
	label text NOT NULL,
	from_version_id uuid REFERENCES prompts_versions (id) ON DELETE SET NULL,
	to_version_id uuid REFERENCES prompts_versions (id) ON DELETE SET NULL,
	moved_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX prompts_label_moves_template ON prompts_label_moves (template_id, label, created_at);

-- One row per render or completion, in the organization that ran it (also for shared templates).
CREATE TABLE prompts_executions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	template_id uuid NOT NULL REFERENCES prompts_templates (id) ON DELETE CASCADE,
	version_id uuid NOT NULL REFERENCES prompts_versions (id) ON DELETE CASCADE,
	variant_id uuid,
	experiment_id uuid,
	kind text NOT NULL CHECK (kind IN ('render', 'complete')),
	subject text,
	user_id uuid REFERENCES users (id) ON DELETE SET NULL,
	request_id text,
	latency_ms integer,
	prompt_tokens integer,
	completion_tokens integer,
	cost numeric,
	success boolean,
	feedback real,
	error text,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prompts_executions_org_template ON prompts_executions (organization_id, template_id, created_at);
CREATE INDEX prompts_executions_request ON prompts_executions (request_id) WHERE request_id IS NOT NULL;
