-- execution: runs of workflows beside runs of plans. A workflow run records the workflow and the version its steps
-- were copied from, and how it was started; its steps carry their graph node, the branch condition of each
-- dependency (depends_when: { "<position>": true|false } for edges out of a condition step) and, for a wait step,
-- when it wakes. `held`: the run is over its workflow's or organization's concurrency limit, parked (status
-- 'waiting', claimed by no one) until a slot frees.
ALTER TABLE execution_runs ALTER COLUMN plan_id DROP NOT NULL;
ALTER TABLE execution_runs ALTER COLUMN plan_revision DROP NOT NULL;
ALTER TABLE execution_runs
	ADD COLUMN workflow_id uuid,
	ADD COLUMN workflow_version integer,
	ADD COLUMN trigger text CHECK (trigger IN ('manual', 'schedule', 'workflow')),
	ADD COLUMN held boolean NOT NULL DEFAULT false,
	ADD CONSTRAINT execution_runs_plan_or_workflow CHECK ((plan_id IS NULL) <> (workflow_id IS NULL));
CREATE INDEX execution_runs_workflow ON execution_runs (workflow_id, created_at DESC) WHERE workflow_id IS NOT NULL;
CREATE INDEX execution_runs_held ON execution_runs (organization_id, created_at) WHERE held;

ALTER TABLE execution_steps
	ADD COLUMN node_id text,
	ADD COLUMN depends_when jsonb NOT NULL DEFAULT '{}',
	ADD COLUMN wake_at timestamptz,
	DROP CONSTRAINT execution_steps_status_check,
	ADD CONSTRAINT execution_steps_status_check
		CHECK (status IN ('pending', 'running', 'waiting_approval', 'sleeping', 'succeeded', 'skipped', 'failed'));
-- The sweep that wakes parked runs whose wait is over.
CREATE INDEX execution_steps_sleeping ON execution_steps (wake_at) WHERE status = 'sleeping';
