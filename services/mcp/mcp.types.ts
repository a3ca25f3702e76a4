// What the mcp service's files share: its settings, the shape of a call and of its log record, and the service's
// `this` (state, methods from its mixins).
import type { Context, Service } from "moleculer";
import type { UsageLimitsMethods } from "../../mixins/usage-limits.mixin";
import type { moduleSettings } from "../../lib/config";
import type { Queryable } from "../../lib/db";
import type { TenantSql } from "../../lib/db/tenant";
import type { HostPolicy } from "../../lib/egress";
import type { InFlight } from "../../lib/in-flight";
import type { AuthInfo } from "../../lib/permissions";
import type { WriteBehind } from "../../lib/write-behind";
import type { Publish } from "../../mixins/events.mixin";
import type { RateLimitMethods } from "../../mixins/rate-limit.mixin";
import type { SecretRef } from "../../mixins/secrets-client.mixin";
import type mcpModule from "./mcp.module";
import type { Health } from "./mcp.events";
import type { ClientPool, ServerSpec } from "./pool";
import type { ServerState } from "./state";
import type { OAuthMethods } from "./oauth";

export type Settings = ReturnType<typeof moduleSettings<typeof mcpModule>>;

export interface CallParams {
	server: string;
	tool: string;
	arguments?: Record<string, unknown>;
	timeout_ms?: number;
	approved?: boolean;
	idempotency_key?: string;
}

export interface CallAnswer {
	execution_id: string;
	is_error: boolean;
	content: unknown[];
	structured_content?: unknown;
	duration_ms: number;
}

export type Outcome = "completed" | "error" | "timeout" | "cancelled" | "failed" | "too_large";

export interface ExecutionRecord {
	id: string;
	organizationId: string;
	server: ServerState["row"];
	tool: string;
	auth: AuthInfo;
	args: unknown;
	result?: unknown;
	isError: boolean;
	outcome: Outcome;
	error?: string;
	durationMs: number;
	startedAt: Date;
	secrets: string[];
}

export interface McpThis extends Service, RateLimitMethods, OAuthMethods, Pick<UsageLimitsMethods, "admitToolCall"> {
	settings: Record<string, unknown>;
	cfg: Settings;
	pool: ClientPool;
	hostPolicy: HostPolicy;
	inFlight: InFlight;
	states: Map<string, Promise<ServerState | undefined>>;
	specs: Map<string, Promise<ServerSpec>>;
	executionLog: WriteBehind<ExecutionRecord>;
	discovering: Map<string, Promise<unknown>>;
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	callTool(ctx: Context<CallParams>): Promise<CallAnswer>;
	resolveSecret(ref: SecretRef): Promise<string>;
	rememberSecret(ref: SecretRef, value: string | null): void;
	identityMeta(action: string, organizationId?: string, extra?: string): Record<string, string>;
	markChanged(row: ServerState["row"], reconnect: boolean): Promise<void>;
	state(t: TenantSql, server: string): Promise<ServerState>;
	specFor(state: ServerState): Promise<ServerSpec>;
	teamsOf(t: TenantSql, auth: AuthInfo, state: ServerState): Promise<string[]>;
	record(rec: ExecutionRecord): void;
	flush(): Promise<void>;
	discover(organizationId: string, serverId: string): Promise<unknown>;
	checkHealth(organizationId: string, serverId: string): Promise<{ ok: boolean; latencyMs: number; health: Health }>;
	recordHealth(
		organizationId: string,
		serverId: string,
		ok: boolean,
		latencyMs: number | null,
		error?: string
	): Promise<Health>;
	tick(): Promise<void>;
	changed(organizationId: string, serverId: string, reconnect: boolean): void;
	dropCaches(services: string[]): Promise<void>;
}
