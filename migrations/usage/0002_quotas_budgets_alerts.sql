-- usage limits: quotas (tokens, requests, tool calls) and budgets (dollars) per organization, team, user or API key
-- and per UTC day or month; what each has consumed per period (from ai.usage.recorded, exactly once); and one alert
-- per limit, period and threshold crossed, so each crossing is announced once.
CREATE TABLE usage_quotas (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	metric text NOT NULL CHECK (metric IN ('tokens', 'requests', 'tool_calls')),
	scope text NOT NULL CHECK (scope IN ('organization', 'team', 'user', 'api_key')),
	-- The team, user or API key; none for the organization.
	subject_id uuid,
	period text NOT NULL CHECK (period IN ('day', 'month')),
	amount bigint NOT NULL CHECK (amount > 0),
	thresholds double precision[] NOT NULL DEFAULT '{0.8}',
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((scope = 'organization') = (subject_id IS NULL)),
	UNIQUE (organization_id, name)
);
CREATE INDEX usage_quotas_org ON usage_quotas (organization_id) WHERE enabled;

CREATE TABLE usage_budgets (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	scope text NOT NULL CHECK (scope IN ('organization', 'team', 'user', 'api_key')),
	subject_id uuid,
	period text NOT NULL CHECK (period IN ('day', 'month')),
	-- Dollars.
	amount numeric(20, 6) NOT NULL CHECK (amount > 0),
	thresholds double precision[] NOT NULL DEFAULT '{0.8}',
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((scope = 'organization') = (subject_id IS NULL)),
	UNIQUE (organization_id, name)
);
CREATE INDEX usage_budgets_org ON usage_budgets (organization_id) WHERE enabled;

-- What a limit has consumed in one period (tokens, requests, tool calls, or dollars), settled requests only:
-- the durable copy the Redis counters are rebuilt from.
CREATE TABLE usage_limit_consumption (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	quota_id uuid REFERENCES usage_quotas (id) ON DELETE CASCADE,
	budget_id uuid REFERENCES usage_budgets (id) ON DELETE CASCADE,
	limit_id uuid GENERATED ALWAYS AS (coalesce(quota_id, budget_id)) STORED,
	period_start timestamptz NOT NULL,
	used numeric(24, 9) NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (num_nonnulls(quota_id, budget_id) = 1),
	PRIMARY KEY (limit_id, period_start)
);

-- One row per limit, period and threshold crossed (1 is the limit itself).
CREATE TABLE usage_alerts (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	quota_id uuid REFERENCES usage_quotas (id) ON DELETE CASCADE,
	budget_id uuid REFERENCES usage_budgets (id) ON DELETE CASCADE,
	limit_id uuid GENERATED ALWAYS AS (coalesce(quota_id, budget_id)) STORED,
	period_start timestamptz NOT NULL,
	-- What was used when the alert was sent, and the limit then (dollars for a budget): for display only.
	threshold double precision NOT NULL,
	kind text NOT NULL CHECK (kind IN ('warning', 'exceeded')),
	used double precision NOT NULL,
	amount double precision NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (num_nonnulls(quota_id, budget_id) = 1),
	UNIQUE (limit_id, period_start, threshold)
);
CREATE INDEX usage_alerts_org ON usage_alerts (organization_id, created_at DESC);
