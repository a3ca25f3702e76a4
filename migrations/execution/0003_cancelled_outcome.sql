-- A run cancelled before its end has an outcome too (execution.plan.executed with status "cancelled", once).
ALTER TABLE execution_runs DROP CONSTRAINT execution_runs_outcome_check;
ALTER TABLE execution_runs ADD CONSTRAINT execution_runs_outcome_check
	CHECK (outcome IN ('succeeded', 'failed', 'cancelled'));
