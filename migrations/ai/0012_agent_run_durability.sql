-- Durable agent runs. A run is driven by a job (ai_agent_jobs, mixins/jobs.mixin.ts): whichever replica claims it
-- holds it under a lease kept alive by heartbeats, and when that replica dies another one claims the job once the
-- lease has run out and continues the run from its last committed step. One job drives a run from its start (or an
-- approval) until it ends or pauses; `payload` holds the run's id and who drives it (no credential).
CREATE TABLE ai_agent_jobs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	run_id uuid NOT NULL REFERENCES ai_agent_runs (id) ON DELETE CASCADE,
	kind text NOT NULL CHECK (kind IN ('drive')),
	status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
	payload jsonb NOT NULL DEFAULT '{}',
	cursor jsonb,
	done integer NOT NULL DEFAULT 0,
	total integer NOT NULL DEFAULT 0,
	error text,
	lease_owner text,
	lease_until timestamptz,
	attempts integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz
);
CREATE INDEX ai_agent_jobs_claim ON ai_agent_jobs (status, created_at) WHERE status IN ('queued', 'running');
-- At most one job drives a run at a time.
CREATE UNIQUE INDEX ai_agent_jobs_one_per_run ON ai_agent_jobs (run_id) WHERE status IN ('queued', 'running');

-- A tool call is recorded with its idempotency key before it is made (call_started_at): on resume, a call started
-- whose result was never recorded is retried only when its tool says it is safe to repeat, else it is reported to the
-- model as interrupted (status 'interrupted', outcome unknown).
ALTER TABLE ai_agent_steps ADD COLUMN idempotency_key text;
ALTER TABLE ai_agent_steps ADD COLUMN call_started_at timestamptz;
ALTER TABLE ai_agent_steps ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE ai_agent_steps DROP CONSTRAINT ai_agent_steps_status_check;
ALTER TABLE ai_agent_steps ADD CONSTRAINT ai_agent_steps_status_check CHECK (status IN ('completed', 'failed',
	'awaiting_approval', 'approved', 'rejected', 'running', 'cancelled', 'interrupted'));
CREATE UNIQUE INDEX ai_agent_steps_idempotency_key ON ai_agent_steps (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The run's tokens as OpenAI's usage object tells them, summed over its model turns.
ALTER TABLE ai_agent_runs ADD COLUMN prompt_tokens integer NOT NULL DEFAULT 0;
ALTER TABLE ai_agent_runs ADD COLUMN completion_tokens integer NOT NULL DEFAULT 0;
ALTER TABLE ai_agent_runs ADD COLUMN cached_tokens integer NOT NULL DEFAULT 0;
