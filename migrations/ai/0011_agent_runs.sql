-- Agent runs: a completion that calls tools in a loop. The run row holds everything needed to continue it on any
-- replica (the conversation so far, the tool catalogue it was started with, its limits and what it has spent), so an
-- approval that arrives on another replica resumes it there. Each step (a model turn, a tool call) is one row.
CREATE TABLE ai_agent_runs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid REFERENCES users (id) ON DELETE SET NULL,
	api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL,
	model text NOT NULL,
	tool_sets text[] NOT NULL DEFAULT '{}',
	status text NOT NULL CHECK (status IN ('running', 'awaiting_approval', 'completed', 'failed', 'cancelled',
		'step_limit', 'budget_exceeded')),
	-- The messages sent to the model so far (OpenAI chat shape), and the tools offered: name → where it runs.
	messages jsonb NOT NULL,
	tools jsonb NOT NULL DEFAULT '{}',
	max_steps integer NOT NULL CHECK (max_steps BETWEEN 1 AND 100),
	max_tokens integer CHECK (max_tokens > 0),
	max_cost numeric CHECK (max_cost >= 0),
	-- Model turns taken (max_steps bounds them).
	turns integer NOT NULL DEFAULT 0,
	tokens integer NOT NULL DEFAULT 0,
	cost numeric NOT NULL DEFAULT 0,
	output text,
	error text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz
);
CREATE INDEX ai_agent_runs_org_time_idx ON ai_agent_runs (organization_id, created_at DESC);

CREATE TABLE ai_agent_steps (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	run_id uuid NOT NULL REFERENCES ai_agent_runs (id) ON DELETE CASCADE,
	seq integer NOT NULL,
	kind text NOT NULL CHECK (kind IN ('model', 'tool')),
	-- model: the assistant's text and tool calls; tool: one call, its arguments and result.
	status text NOT NULL CHECK (status IN ('completed', 'failed', 'awaiting_approval', 'approved', 'rejected',
		'running', 'cancelled')),
	content text,
	tool_calls jsonb,
	call_id text,
	tool text,
	server text,
	arguments jsonb,
	result jsonb,
	is_error boolean NOT NULL DEFAULT false,
	decided_by uuid REFERENCES users (id) ON DELETE SET NULL,
	tokens integer NOT NULL DEFAULT 0,
	cost numeric NOT NULL DEFAULT 0,
	duration_ms integer,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (run_id, seq)
);
CREATE INDEX ai_agent_steps_run_idx ON ai_agent_steps (run_id, seq);
