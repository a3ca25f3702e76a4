-- mcp: the MCP servers an organization registers, what discovery found on them, every tool execution and every
-- health check. Credentials are never stored here: env values and headers name secrets ({ "secret": NAME }).
CREATE TABLE mcp_servers (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
	description text NOT NULL DEFAULT '',
	transport text NOT NULL CHECK (transport IN ('stdio', 'http', 'sse')),
	-- stdio
	command text,
	args jsonb NOT NULL DEFAULT '[]',
	env jsonb NOT NULL DEFAULT '{}',
	cwd text,
	-- http / sse
	url text,
	headers jsonb NOT NULL DEFAULT '{}',
	-- the environment of the secrets env and headers name
	secret_environment text NOT NULL DEFAULT 'production',
	-- OAuth state the SDK asks the client to keep (client information, tokens, code verifier), per server
	oauth jsonb,
	enabled boolean NOT NULL DEFAULT true,
	timeout_ms integer CHECK (timeout_ms IS NULL OR timeout_ms > 0),
	-- per tool, per minute, for this server's tools unless a tool says otherwise (NULL: no limit)
	tool_calls_per_minute integer CHECK (tool_calls_per_minute IS NULL OR tool_calls_per_minute >= 0),
	health text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'healthy', 'unhealthy')),
	health_changed_at timestamptz,
	consecutive_failures integer NOT NULL DEFAULT 0,
	consecutive_successes integer NOT NULL DEFAULT 0,
	last_error text,
	server_info jsonb,
	protocol_version text,
	discovered_at timestamptz,
	-- when a replica next checks its health and discovers it again (claimed with SKIP LOCKED: one replica each time)
	next_health_at timestamptz NOT NULL DEFAULT now(),
	next_refresh_at timestamptz NOT NULL DEFAULT now(),
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name),
	CHECK ((transport = 'stdio') = (command IS NOT NULL)),
	CHECK ((transport <> 'stdio') = (url IS NOT NULL))
);

-- What the server said it can do, and its resources, resource templates and prompts at the last discovery.
CREATE TABLE mcp_server_capabilities (
	server_id uuid PRIMARY KEY REFERENCES mcp_servers (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	capabilities jsonb NOT NULL DEFAULT '{}',
	instructions text,
	resources jsonb NOT NULL DEFAULT '[]',
	resource_templates jsonb NOT NULL DEFAULT '[]',
	prompts jsonb NOT NULL DEFAULT '[]',
	discovered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mcp_tools (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	server_id uuid NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
	name text NOT NULL,
	title text,
	description text,
	input_schema jsonb NOT NULL,
	output_schema jsonb,
	annotations jsonb,
	-- sha256 of the canonical input and output schema: a different one at discovery is drift
	schema_hash text NOT NULL,
	previous_input_schema jsonb,
	previous_output_schema jsonb,
	-- drift seen and not yet acknowledged by an admin
	changed boolean NOT NULL DEFAULT false,
	changed_at timestamptz,
	-- gone from the server at the last discovery (kept for the log; not callable)
	removed boolean NOT NULL DEFAULT false,
	requires_approval boolean NOT NULL DEFAULT false,
	calls_per_minute integer CHECK (calls_per_minute IS NULL OR calls_per_minute >= 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (server_id, name)
);
CREATE INDEX mcp_tools_org ON mcp_tools (organization_id);

-- Allow-lists: a row for (server, no team) limits the whole organization to its tools on that server; a row for
-- (server, team) limits that team's members further (a member of several limited teams may use any of their lists).
CREATE TABLE mcp_allow_lists (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	server_id uuid NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
	team_id uuid REFERENCES teams (id) ON DELETE CASCADE,
	tools text[] NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE NULLS NOT DISTINCT (server_id, team_id)
);

CREATE TABLE mcp_executions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	server_id uuid REFERENCES mcp_servers (id) ON DELETE SET NULL,
	server_name text NOT NULL,
	tool text NOT NULL,
	user_id uuid REFERENCES users (id) ON DELETE SET NULL,
	api_key_id uuid,
	-- arguments and result with every secret value of the server replaced (lib/redact.ts); the result cut short
	arguments jsonb,
	result jsonb,
	is_error boolean NOT NULL DEFAULT false,
	outcome text NOT NULL CHECK (outcome IN ('completed', 'error', 'timeout', 'cancelled', 'failed', 'too_large')),
	error text,
	duration_ms integer NOT NULL,
	started_at timestamptz NOT NULL,
	finished_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_executions_org_time ON mcp_executions (organization_id, started_at DESC);
CREATE INDEX mcp_executions_server ON mcp_executions (server_id, started_at DESC);

CREATE TABLE mcp_health_checks (
	id bigserial PRIMARY KEY,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	server_id uuid NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
	ok boolean NOT NULL,
	latency_ms integer,
	error text,
	-- the server's health after this check
	health text NOT NULL,
	checked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_health_checks_server_time ON mcp_health_checks (server_id, checked_at DESC);
