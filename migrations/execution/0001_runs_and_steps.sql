-- execution: runs of approved plans and their steps. A run is a leased job (mixins/jobs.mixin.ts): whichever
-- replica holds its lease drives its steps; a replica that dies stops renewing it and another continues the run
-- from the steps' committed states.
CREATE TABLE execution_runs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	plan_id uuid NOT NULL REFERENCES planning_plans (id) ON DELETE CASCADE,
	-- The plan revision that was approved and run (its steps are copied into execution_steps).
	plan_revision integer NOT NULL,
	title text NOT NULL,
	-- execute: run the steps; rollback: undo the completed ones in reverse order (the same run, re-queued).
	kind text NOT NULL CHECK (kind IN ('execute', 'rollback')),
	-- waiting: parked until a person approves a step; not claimed until then.
	status text NOT NULL DEFAULT 'queued'
		CHECK (status IN ('queued', 'running', 'waiting', 'completed', 'failed', 'cancelled')),
	-- The plan's outcome, kept when a rollback follows: succeeded | failed.
	outcome text CHECK (outcome IN ('succeeded', 'failed')),
	rolled_back_at timestamptz,
	payload jsonb NOT NULL DEFAULT '{}',
	cursor jsonb,
	done integer NOT NULL DEFAULT 0,
	total integer NOT NULL DEFAULT 0,
	error text,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	lease_owner text,
	lease_until timestamptz,
	attempts integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz
);
CREATE INDEX execution_runs_claim ON execution_runs (status, created_at) WHERE status IN ('queued', 'running');
CREATE INDEX execution_runs_org ON execution_runs (organization_id, created_at DESC);
CREATE INDEX execution_runs_plan ON execution_runs (plan_id);

-- A run's steps: a set of steps with dependencies (a plan is a chain: each step depends on the one before), so
-- workflows with parallel branches can run on the same engine.
CREATE TABLE execution_steps (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	run_id uuid NOT NULL REFERENCES execution_runs (id) ON DELETE CASCADE,
	position integer NOT NULL,
	depends_on integer[] NOT NULL DEFAULT '{}',
	kind text NOT NULL,
	title text NOT NULL,
	config jsonb NOT NULL DEFAULT '{}',
	-- pending → running → succeeded | failed; waiting_approval before a step that needs a person's approval.
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'running', 'waiting_approval', 'succeeded', 'failed')),
	-- Sent with every side effect of the step (Idempotency-Key), the same on every attempt and every replica.
	idempotency_key text NOT NULL,
	attempts integer NOT NULL DEFAULT 0,
	-- Failed attempts (a replica's death is not one): retries are counted on these.
	failures integer NOT NULL DEFAULT 0,
	output jsonb,
	error text,
	logs jsonb NOT NULL DEFAULT '[]',
	approved_by uuid REFERENCES users (id) ON DELETE SET NULL,
	approved_at timestamptz,
	-- none: nothing to undo; pending → running → done | failed during a rollback.
	undo_status text NOT NULL DEFAULT 'none' CHECK (undo_status IN ('none', 'pending', 'running', 'done', 'failed')),
	started_at timestamptz,
	heartbeat_at timestamptz,
	finished_at timestamptz,
	undone_at timestamptz,
	UNIQUE (run_id, position)
);
CREATE INDEX execution_steps_org ON execution_steps (organization_id);
