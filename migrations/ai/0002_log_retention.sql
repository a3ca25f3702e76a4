-- How long an organization keeps its completion log (NULL: for good). Older rows are pruned every 10 minutes.
ALTER TABLE ai_settings ADD COLUMN log_retention_days integer CHECK (log_retention_days BETWEEN 1 AND 3650);
