-- Usage metering: one row per AI request (its event id is the key that makes ingestion exactly-once), hourly, daily
-- and monthly aggregates kept in the same transaction, and the organization's price list by model, versioned by the
-- date it takes effect (a price is never changed in place: a new row takes over from its effective_from).

CREATE TABLE usage_pricing (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	model text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
	-- Dollars per million tokens. cache_write_price NULL: cache writes cost what input does.
	input_price numeric NOT NULL CHECK (input_price >= 0),
	output_price numeric NOT NULL CHECK (output_price >= 0),
	cached_input_price numeric NOT NULL CHECK (cached_input_price >= 0),
	cache_write_price numeric CHECK (cache_write_price >= 0),
	effective_from timestamptz NOT NULL,
	created_by uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, model, effective_from)
);

CREATE TABLE usage_events (
	id uuid PRIMARY KEY, -- the ai.usage.recorded event's id
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	request_id text NOT NULL,
	-- Who used it; no foreign keys: usage outlives a removed user, team or key.
	team_id uuid,
	user_id uuid,
	api_key_id uuid,
	service text,
	kind text NOT NULL CHECK (kind IN ('completion', 'embedding')),
	requested_model text NOT NULL,
	model text NOT NULL,
	provider_id uuid,
	status text NOT NULL,
	cache_hit boolean NOT NULL DEFAULT false,
	input_tokens bigint NOT NULL DEFAULT 0, -- every input token, cached ones and cache writes included
	output_tokens bigint NOT NULL DEFAULT 0,
	cached_tokens bigint NOT NULL DEFAULT 0,
	cache_write_tokens bigint NOT NULL DEFAULT 0,
	tool_calls integer NOT NULL DEFAULT 0,
	reported_cost numeric NOT NULL DEFAULT 0, -- at the deployment's prices, as the ai module reported it
	cost numeric NOT NULL DEFAULT 0, -- what the organization is charged: its usage_pricing row, else reported_cost
	pricing_id uuid REFERENCES usage_pricing (id) ON DELETE SET NULL,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX usage_events_org_time_idx ON usage_events (organization_id, occurred_at);

-- One row per UTC bucket and combination of dimensions; NULL is a value of a dimension (no user, no key), so the
-- unique index treats NULLs as equal and an upsert finds the row.
CREATE TABLE usage_aggregates_hourly (
	bucket timestamptz NOT NULL,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	team_id uuid,
	user_id uuid,
	api_key_id uuid,
	model text NOT NULL,
	provider_id uuid,
	kind text NOT NULL,
	input_tokens bigint NOT NULL DEFAULT 0,
	output_tokens bigint NOT NULL DEFAULT 0,
	cached_tokens bigint NOT NULL DEFAULT 0,
	cache_write_tokens bigint NOT NULL DEFAULT 0,
	requests bigint NOT NULL DEFAULT 0,
	tool_calls bigint NOT NULL DEFAULT 0,
	embeddings bigint NOT NULL DEFAULT 0,
	cost numeric NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX usage_aggregates_hourly_key ON usage_aggregates_hourly
	(organization_id, bucket, team_id, user_id, api_key_id, model, provider_id, kind) NULLS NOT DISTINCT;

CREATE TABLE usage_aggregates_daily (LIKE usage_aggregates_hourly INCLUDING DEFAULTS);
ALTER TABLE usage_aggregates_daily
	ADD FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX usage_aggregates_daily_key ON usage_aggregates_daily
	(organization_id, bucket, team_id, user_id, api_key_id, model, provider_id, kind) NULLS NOT DISTINCT;

CREATE TABLE usage_aggregates_monthly (LIKE usage_aggregates_hourly INCLUDING DEFAULTS);
ALTER TABLE usage_aggregates_monthly
	ADD FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX usage_aggregates_monthly_key ON usage_aggregates_monthly
	(organization_id, bucket, team_id, user_id, api_key_id, model, provider_id, kind) NULLS NOT DISTINCT;
