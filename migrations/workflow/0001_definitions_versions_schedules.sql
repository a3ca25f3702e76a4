-- workflow: reusable workflows. A definition's graph is kept per immutable version (a run copies the steps of the
-- version it starts on, so editing a workflow never changes a run under way).
CREATE TABLE workflow_definitions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	description text NOT NULL DEFAULT '',
	-- The latest version (its graph is in workflow_versions).
	version integer NOT NULL DEFAULT 1,
	-- { cron, timezone?, inputs? } or null.
	schedule jsonb,
	-- { limit } or null: runs of this workflow active at once.
	concurrency jsonb,
	enabled boolean NOT NULL DEFAULT true,
	-- The last schedule tick that started a run (ticks missed before it are not run again).
	last_tick_at timestamptz,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);
CREATE INDEX workflow_definitions_scheduled ON workflow_definitions (id) WHERE schedule IS NOT NULL AND enabled;

CREATE TABLE workflow_versions (
	definition_id uuid NOT NULL REFERENCES workflow_definitions (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	version integer NOT NULL,
	graph jsonb NOT NULL,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (definition_id, version)
);

-- One row per schedule tick that started a run: the replica that inserts it starts the run, any other finds it there.
CREATE TABLE workflow_schedule_ticks (
	definition_id uuid NOT NULL REFERENCES workflow_definitions (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	tick_at timestamptz NOT NULL,
	run_id uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (definition_id, tick_at)
);
