// What a tool call needs to know about a server, read once and kept in this replica's memory until the server, its
// tools or its allow-lists change (the `mcp.server.changed` broadcast) or its secrets do (`secrets.changed`): the
// row, its tools, its allow-lists, and the connection spec with secrets resolved.
import crypto from "crypto";
import type { TenantSql } from "../../lib/db/tenant";
import { isUuid } from "../../lib/db/tenant";
import type { ServerSpec, TransportKind } from "./pool";
import type { StdioLimits } from "./stdio";

export type Valued = string | { secret: string };

export interface ServerRow {
	id: string;
	organization_id: string;
	name: string;
	transport: TransportKind;
	command: string | null;
	args: string[];
	env: Record<string, Valued>;
	cwd: string | null;
	url: string | null;
	headers: Record<string, Valued>;
	secret_environment: string;
	enabled: boolean;
	timeout_ms: number | null;
	tool_calls_per_minute: number | null;
	health: "unknown" | "healthy" | "unhealthy";
	oauth_status: "none" | "required" | "authorized";
	oauth_client_id: string | null;
	oauth_client_secret: { secret: string } | null;
	updated_at: Date;
}

export interface ToolRow {
	id: string;
	name: string;
	title: string | null;
	description: string | null;
	input_schema: Record<string, unknown>;
	output_schema: Record<string, unknown> | null;
	requires_approval: boolean;
	calls_per_minute: number | null;
	removed: boolean;
	annotations: Record<string, unknown> | null;
}

export interface ServerState {
	row: ServerRow;
	tools: Map<string, ToolRow>;
	// null: no organization-wide list (every tool); teams: team id -> its list
	orgAllow: Set<string> | null;
	teamAllow: Map<string, Set<string>>;
}

export async function loadState(t: TenantSql, server: string): Promise<ServerState | undefined> {
	const row = await t.one<ServerRow>(
		`SELECT * FROM mcp_servers WHERE organization_id = $org AND ${isUuid(server) ? "id" : "name"} = $1`,
		[server]
	);
	if (!row) return undefined;
	const tools = await t.rows<ToolRow>(
		`SELECT id, name, title, description, input_schema, output_schema, requires_approval, calls_per_minute, removed,
			annotations FROM mcp_tools WHERE server_id = $1 AND organization_id = $org`,
		[row.id]
	);
	const lists = await t.rows<{ team_id: string | null; tools: string[] }>(
		"SELECT team_id, tools FROM mcp_allow_lists WHERE server_id = $1 AND organization_id = $org",
		[row.id]
	);
	const orgList = lists.find(l => !l.team_id);
	return {
		row,
		tools: new Map(tools.map(x => [x.name, x])),
		orgAllow: orgList ? new Set(orgList.tools) : null,
		teamAllow: new Map(lists.filter(l => l.team_id).map(l => [l.team_id!, new Set(l.tools)]))
	};
}

// Whether a caller in `teams` may use `tool`: the organization's list, then (for a member of limited teams) any of
// their teams' lists.
export function allowedFor(state: ServerState, tool: string, teams: string[]): boolean {
	if (state.orgAllow && !state.orgAllow.has(tool)) return false;
	const limiting = teams.filter(t => state.teamAllow.has(t));
	return !limiting.length || limiting.some(t => state.teamAllow.get(t)!.has(tool));
}

export async function resolveValues(
	values: Record<string, Valued>,
	resolve: (name: string) => Promise<string>
): Promise<Record<string, string>> {
	const out: Record<string, string> = {};
	for (const [k, v] of Object.entries(values ?? {})) out[k] = typeof v === "string" ? v : await resolve(v.secret);
	return out;
}

export async function specOf(
	row: ServerRow,
	resolve: (name: string) => Promise<string>,
	limits: StdioLimits
): Promise<ServerSpec> {
	const env = await resolveValues(row.env, resolve);
	const headers = await resolveValues(row.headers, resolve);
	const fromVault = (values: Record<string, Valued>, resolved: Record<string, string>) =>
		Object.entries(values ?? {})
			.filter(([, v]) => typeof v !== "string")
			.map(([k]) => resolved[k]);
	const secrets = [...fromVault(row.env, env), ...fromVault(row.headers, headers)];
	// The resolved values are part of the version: a rotated secret replaces the pooled connection.
	const version = crypto
		.createHash("sha256")
		.update(JSON.stringify([new Date(row.updated_at).toISOString(), env, headers]))
		.digest("hex")
		.slice(0, 16);
	return {
		id: row.id,
		organizationId: row.organization_id,
		name: row.name,
		transport: row.transport,
		version,
		stdio:
			row.transport === "stdio"
				? { command: row.command!, args: row.args ?? [], env, cwd: row.cwd ?? undefined, limits }
				: undefined,
		url: row.url ?? undefined,
		headers,
		secrets
	};
}
