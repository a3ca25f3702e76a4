-- Usage by team. The platform has no "team of a request" (a request is a user's or an API key's, and a key is its
-- owner's), so an event belongs to every team its user is a member of in the organization when it is recorded, as
-- team quotas count it (a member of two teams counts in both). That is not a partition of the organization's usage,
-- so teams get aggregates of their own instead of a dimension of the others (where an event can be in one row
-- only): the team_id column, always empty, goes.
ALTER TABLE usage_events ADD COLUMN team_ids uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE usage_events DROP COLUMN team_id;

-- Dropping the column drops each unique index that includes it; the same without team_id.
ALTER TABLE usage_aggregates_hourly DROP COLUMN team_id;
ALTER TABLE usage_aggregates_daily DROP COLUMN team_id;
ALTER TABLE usage_aggregates_monthly DROP COLUMN team_id;
CREATE UNIQUE INDEX usage_aggregates_hourly_key ON usage_aggregates_hourly
	(organization_id, bucket, user_id, api_key_id, model, provider_id, kind) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX usage_aggregates_daily_key ON usage_aggregates_daily
	(organization_id, bucket, user_id, api_key_id, model, provider_id, kind) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX usage_aggregates_monthly_key ON usage_aggregates_monthly
	(organization_id, bucket, user_id, api_key_id, model, provider_id, kind) NULLS NOT DISTINCT;

-- One row per UTC bucket, team and model: what the team's members used (the event's team_ids). No foreign key to
-- teams: usage outlives a removed team.
CREATE TABLE usage_team_aggregates_hourly (
	bucket timestamptz NOT NULL,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	team_id uuid NOT NULL,
	model text NOT NULL,
	kind text NOT NULL,
	input_tokens bigint NOT NULL DEFAULT 0,
	output_tokens bigint NOT NULL DEFAULT 0,
	cached_tokens bigint NOT NULL DEFAULT 0,
	cache_write_tokens bigint NOT NULL DEFAULT 0,
	requests bigint NOT NULL DEFAULT 0,
	tool_calls bigint NOT NULL DEFAULT 0,
	embeddings bigint NOT NULL DEFAULT 0,
	cost numeric NOT NULL DEFAULT 0,
	PRIMARY KEY (organization_id, bucket, team_id, model, kind)
);
CREATE TABLE usage_team_aggregates_daily (LIKE usage_team_aggregates_hourly INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE usage_team_aggregates_daily
	ADD FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
CREATE TABLE usage_team_aggregates_monthly (LIKE usage_team_aggregates_hourly INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE usage_team_aggregates_monthly
	ADD FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
