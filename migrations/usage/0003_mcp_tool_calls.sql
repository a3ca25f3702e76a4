-- usage: MCP tool executions (mcp.events) are metered as usage events of kind 'tool': one tool call each, no tokens,
-- never counted as model requests (the aggregates' requests measure skips them).
ALTER TABLE usage_events DROP CONSTRAINT usage_events_kind_check;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_kind_check CHECK (kind IN ('completion', 'embedding', 'tool'));
