// The mcp module's events: durable ones on `mcp.events` (through the outbox), and its broadcasts to every replica.
import type { E } from "../../lib/events/types";

type Server = { serverId: string; serverName: string };
export type Execution = Server & {
	executionId: string;
	tool: string;
	userId?: string;
	apiKeyId?: string;
	durationMs?: number;
	error?: string;
};
export type Health = "unknown" | "healthy" | "unhealthy";

export type McpEvent =
	| E<"mcp.tool.execution.started", Execution>
	| E<"mcp.tool.execution.completed", Execution & { isError: boolean }>
	| E<"mcp.tool.execution.failed", Execution & { outcome: string }>
	| E<"mcp.server.health.changed", Server & { from: Health; to: Health; error?: string }>
	| E<"mcp.server.rate_limit.exceeded", Server & { tool: string; scope: "organization" | "tool"; limit: number }>
	| E<"mcp.server.registered", Server & { transport: string }>
	| E<"mcp.server.deregistered", Server>
	| E<"mcp.tool.schema.changed", Server & { tool: string; toolId: string; change: "input" | "output" | "removed" }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"mcp.events": McpEvent;
	}
	interface BroadcastEvents {
		// A server, its tools or its allow-lists changed: every replica drops what it read about the organization's
		// servers and, with `reconnect` (the server itself changed or was removed), closes its pooled clients for it
		// (and reaps their stdio process groups).
		"mcp.server.changed": { organizationId: string; serverId: string; reconnect: boolean };
	}
}
