-- planning: states in Plane's groups, entities of every kind (services/planning/planning.kinds.ts), relations,
-- cycles and plans with ordered steps.
CREATE TABLE planning_states (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	"group" text NOT NULL CHECK ("group" IN ('backlog', 'unstarted', 'started', 'completed', 'cancelled')),
	color text NOT NULL DEFAULT '#9ca3af',
	position integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);

CREATE TABLE planning_entities (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	kind text NOT NULL,
	title text NOT NULL,
	description text NOT NULL DEFAULT '',
	state_id uuid REFERENCES planning_states (id) ON DELETE SET NULL,
	parent_id uuid REFERENCES planning_entities (id) ON DELETE SET NULL,
	start_date date,
	due_date date,
	position double precision NOT NULL DEFAULT 0,
	fields jsonb NOT NULL DEFAULT '{}',
	-- Knowledge articles a generated task was made from.
	article_ids uuid[] NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (due_date IS NULL OR start_date IS NULL OR due_date > start_date),
	CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX planning_entities_org_kind ON planning_entities (organization_id, kind);
CREATE INDEX planning_entities_parent ON planning_entities (parent_id);

CREATE TABLE planning_relations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	kind text NOT NULL CHECK (kind IN ('blocks', 'relates', 'duplicates')),
	source_id uuid NOT NULL REFERENCES planning_entities (id) ON DELETE CASCADE,
	target_id uuid NOT NULL REFERENCES planning_entities (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (source_id <> target_id),
	UNIQUE (kind, source_id, target_id)
);
CREATE INDEX planning_relations_target ON planning_relations (target_id);

CREATE TABLE planning_cycles (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	start_date date NOT NULL,
	end_date date NOT NULL,
	entity_ids uuid[] NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (end_date > start_date),
	UNIQUE (organization_id, name)
);

CREATE TABLE planning_plans (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	title text NOT NULL,
	goal text NOT NULL DEFAULT '',
	-- Ordered steps: [{ kind, title, config }], validated per kind (planning.kinds.ts STEP_KINDS).
	steps jsonb NOT NULL DEFAULT '[]',
	-- Bumped by every edit; an approval is for one revision, so an edit after it needs approval again.
	revision integer NOT NULL DEFAULT 1,
	approved_revision integer,
	approved_by uuid,
	approved_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
