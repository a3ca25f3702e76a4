-- A completion made by a service acting for an organization without a user (a job's principal) names that service.
ALTER TABLE ai_completion_logs ADD COLUMN service text;
