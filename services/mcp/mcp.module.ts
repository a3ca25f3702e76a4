// Manifest of the mcp module (lib/module.ts): MCP servers an organization registers (stdio, Streamable HTTP, the
// older HTTP+SSE), their discovered tools, resources and prompts, tool execution with its log, rate limits, health.
import { defineModule } from "../../lib/module";
import { parseHostRules } from "../../lib/egress";
import { setting } from "../../lib/settings";

const bool = (env: string, def: boolean, description: string) =>
	setting.custom({
		env,
		description,
		parse: raw => {
			if (raw === undefined) return def;
			if (/^(1|true|yes|on)$/i.test(raw)) return true;
			if (/^(0|false|no|off)$/i.test(raw)) return false;
			throw new Error(`expected true or false, got "${raw}"`);
		}
	});

export default defineModule({
	name: "mcp",
	description: "MCP servers: registry, discovery of tools/resources/prompts, tool execution and its log, health",
	tablePrefix: "mcp_",
	dependsOn: ["auth", "secrets"],
	container: { environment: { SERVICE_CREDENTIALS: "mcp:${MCP_SERVICE_CREDENTIAL:?set MCP_SERVICE_CREDENTIAL}" } },
	routes: "mcp.routes",
	publishes: ["mcp.events"],
	consumes: [],
	permissions: {
		"mcp:read": { description: "See MCP servers, their tools, health and the execution log", role: "viewer" },
		"mcp:write": { description: "Call MCP tools", role: "member" },
		"mcp:manage": {
			description: "Register, change and remove MCP servers, tool allow-lists and approval flags",
			role: "admin"
		}
	},
	settings: {
		stdioEnabled: bool(
			"MCP_STDIO_ENABLED",
			true,
			"whether organizations may register and run stdio MCP servers (processes on the platform's hosts)"
		),
		allowedPrivateHosts: setting.custom({
			env: "MCP_ALLOWED_PRIVATE_HOSTS",
			description:
				"internal hosts HTTP MCP servers may be reached at anyway (host names, addresses, CIDR ranges)",
			parse: raw => {
				try {
					return parseHostRules(raw);
				} catch (err) {
					const expected = `expected host names, IP addresses or CIDR ranges, e.g. "localhost:8931,10.0.0.0/8"`;
					throw new Error(`${(err as Error).message} (${expected})`);
				}
			}
		}),
		oauthRedirectUrl: setting.custom({
			env: "MCP_OAUTH_REDIRECT_URL",
			description:
				"the platform's OAuth callback as the browser reaches it, e.g. https://ide.example.com/api/mcp/oauth/callback (default: http://localhost:PORT/api/mcp/oauth/callback)",
			parse: raw => {
				if (!raw) return undefined;
				const url = new URL(raw);
				if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("expected an http(s) URL");
				return url.href;
			}
		}),
		callTimeoutMs: setting.int({
			env: "MCP_CALL_TIMEOUT_MS",
			default: 60_000,
			min: 100,
			max: 3_600_000,
			description:
				"the longest a tool call may take (a caller may ask for less); then it is cancelled on the server"
		}),
		maxResultBytes: setting.int({
			env: "MCP_MAX_RESULT_BYTES",
			default: 1_048_576,
			min: 1024,
			max: 64 * 1_048_576,
			description: "a tool result larger than this (as JSON) is refused as an error"
		}),
		idleTimeoutMs: setting.int({
			env: "MCP_IDLE_TIMEOUT_MS",
			default: 300_000,
			min: 100,
			max: 86_400_000,
			description: "a pooled client (and its stdio process) unused this long is closed"
		}),
		healthIntervalMs: setting.int({
			env: "MCP_HEALTH_INTERVAL_MS",
			default: 60_000,
			min: 0,
			max: 86_400_000,
			description: "how often every enabled server is pinged (0: never on a schedule)"
		}),
		healthFailures: setting.int({
			env: "MCP_HEALTH_FAILURES",
			default: 3,
			min: 1,
			max: 100,
			description: "consecutive failed checks that turn a healthy server unhealthy"
		}),
		healthRecoveries: setting.int({
			env: "MCP_HEALTH_RECOVERIES",
			default: 2,
			min: 1,
			max: 100,
			description: "consecutive good checks that turn an unhealthy server healthy again"
		}),
		refreshIntervalMs: setting.int({
			env: "MCP_REFRESH_INTERVAL_MS",
			default: 3_600_000,
			min: 0,
			max: 604_800_000,
			description: "how often every enabled server's tools, resources and prompts are discovered again (0: never)"
		}),
		orgCallsPerMinute: setting.int({
			env: "MCP_ORG_CALLS_PER_MINUTE",
			default: 600,
			min: 0,
			max: 10_000_000,
			description: "tool calls an organization may make per minute across all servers (0: no limit)"
		}),
		stdioMemoryMb: setting.int({
			env: "MCP_STDIO_MEMORY_MB",
			default: 2048,
			min: 0,
			max: 1_048_576,
			description: "address-space limit of each stdio server process, in MiB (prlimit --as; 0: none)"
		}),
		stdioCpuSeconds: setting.int({
			env: "MCP_STDIO_CPU_SECONDS",
			default: 3600,
			min: 0,
			max: 31_536_000,
			description: "CPU seconds each stdio server process may use before the kernel stops it (0: none)"
		}),
		stdioMaxFiles: setting.int({
			env: "MCP_STDIO_MAX_FILES",
			default: 1024,
			min: 0,
			max: 1_048_576,
			description: "open files each stdio server process may hold (prlimit --nofile; 0: the platform's)"
		})
	}
});
