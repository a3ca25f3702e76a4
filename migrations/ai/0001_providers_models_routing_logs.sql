-- AI service: providers (OpenAI-compatible endpoints), models deployed on them, presets, routing, fallbacks,
-- rate limits, the completion log and the durable record of the response cache.

CREATE TABLE ai_providers (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	base_url text NOT NULL,
	-- The key lives in the secrets service; only its name (and environment) is kept here.
	api_key_secret text,
	api_key_environment text NOT NULL DEFAULT 'production',
	timeout_ms integer NOT NULL DEFAULT 60000 CHECK (timeout_ms BETWEEN 100 AND 600000),
	headers jsonb NOT NULL DEFAULT '{}',
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);

-- A model as clients name it, deployed on one provider; several rows with one name are several deployments.
CREATE TABLE ai_models (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	provider_id uuid NOT NULL REFERENCES ai_providers (id) ON DELETE CASCADE,
	name text NOT NULL,
	provider_model text NOT NULL,
	kind text NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'embedding')),
	context_window integer,
	capabilities jsonb NOT NULL DEFAULT '{}',
	input_price numeric NOT NULL DEFAULT 0,
	output_price numeric NOT NULL DEFAULT 0,
	cached_input_price numeric NOT NULL DEFAULT 0,
	priority integer NOT NULL DEFAULT 100,
	weight integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
	tags text[] NOT NULL DEFAULT '{}',
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name, provider_id)
);

CREATE TABLE ai_model_configurations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	model text NOT NULL,
	temperature numeric,
	max_tokens integer,
	system_prompt text,
	response_format jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);

CREATE TABLE ai_routing_rules (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	model text NOT NULL,
	tag text,
	strategy text NOT NULL CHECK (strategy IN ('priority', 'weighted', 'latency', 'least-busy', 'cost')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ai_routing_rules_model_idx ON ai_routing_rules (organization_id, model, COALESCE(tag, ''));

CREATE TABLE ai_fallback_chains (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	model text NOT NULL,
	fallbacks text[] NOT NULL,
	first_token_timeout_ms integer CHECK (first_token_timeout_ms > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, model)
);

CREATE TABLE ai_rate_limit_configs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	scope text NOT NULL CHECK (scope IN ('organization', 'user', 'api_key', 'model')),
	model text,
	requests_per_minute integer CHECK (requests_per_minute > 0),
	tokens_per_minute integer CHECK (tokens_per_minute > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ai_completion_logs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	request_id text NOT NULL,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid REFERENCES users (id) ON DELETE SET NULL,
	api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL,
	kind text NOT NULL DEFAULT 'chat',
	requested_model text NOT NULL,
	served_model text,
	provider_id uuid REFERENCES ai_providers (id) ON DELETE SET NULL,
	fallback_path text[] NOT NULL DEFAULT '{}',
	stream boolean NOT NULL DEFAULT false,
	cache_hit boolean NOT NULL DEFAULT false,
	prompt_tokens integer NOT NULL DEFAULT 0,
	completion_tokens integer NOT NULL DEFAULT 0,
	cached_tokens integer NOT NULL DEFAULT 0,
	cost numeric NOT NULL DEFAULT 0,
	latency_ms integer,
	first_token_ms integer,
	status text NOT NULL CHECK (status IN ('success', 'error', 'cancelled', 'rate_limited')),
	error text,
	-- Only when the organization turned content logging on.
	request_body jsonb,
	response_body jsonb,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_completion_logs_org_time_idx ON ai_completion_logs (organization_id, created_at DESC);

CREATE TABLE ai_cache (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	cache_key text NOT NULL,
	model text NOT NULL,
	response jsonb NOT NULL,
	hits integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (organization_id, cache_key)
);

CREATE TABLE ai_settings (
	organization_id uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
	store_content boolean NOT NULL DEFAULT false,
	cache_ttl_seconds integer NOT NULL DEFAULT 3600 CHECK (cache_ttl_seconds BETWEEN 1 AND 2592000),
	cooldown_seconds integer NOT NULL DEFAULT 30 CHECK (cooldown_seconds BETWEEN 1 AND 3600),
	updated_at timestamptz NOT NULL DEFAULT now()
);
