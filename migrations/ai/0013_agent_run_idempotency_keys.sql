-- An agent run started with an idempotency key (ai-agent-runs.start, ai.agent): a start repeated with the key within
-- the retention window (lib/idempotency.ts) follows the run the first one started, running or ended, instead of
-- starting another.
ALTER TABLE ai_agent_runs ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX ai_agent_runs_idempotency_key ON ai_agent_runs (organization_id, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
