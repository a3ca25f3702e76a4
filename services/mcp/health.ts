// Health: pings recorded as a timeline with transitions published exactly once, and the schedule that claims the
// servers due for a check or a discovery (one replica each).
import type { ServiceSchema } from "../../lib/schema";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { getDb } from "../../lib/db";
import { organizationSql } from "../../lib/db/tenant";
import { announceChange } from "../../lib/live";
import { redact } from "../../lib/redact";
import type { Health } from "./mcp.events";
import type { McpThis } from "./mcp.types";

const CLAIM_BATCH = 20;
const TICK_MS = 1000;

export const HealthChecks: Partial<ServiceSchema> = {
	mixins: [
		// Health checks and refreshes fall due per server; each tick claims the due ones (one replica each).
		HousekeepingMixin(
			"tick",
			service => {
				const { healthIntervalMs, refreshIntervalMs } = (service as McpThis).cfg;
				const every = [healthIntervalMs, refreshIntervalMs].filter(Boolean);
				return every.length ? Math.min(TICK_MS, ...every) : 0;
			},
			"run the MCP schedule"
		)
	],
	methods: {
		async checkHealth(this: McpThis, organizationId: string, serverId: string) {
			const t = organizationSql(organizationId);
			const state = await this.state(t, serverId);
			const started = performance.now();
			let error: string | undefined;
			let secrets: string[] = [];
			try {
				const spec = await this.specFor(state);
				secrets = spec.secrets;
				const entry = await this.pool.acquire(spec);
				await entry.client.ping({ timeout: Math.min(this.cfg.callTimeoutMs, 10_000) });
			} catch (err) {
				error = redact((err as Error).message, secrets);
			}
			const latencyMs = Math.round(performance.now() - started);
			const health = await this.recordHealth(organizationId, state.row.id, !error, latencyMs, error);
			return { ok: !error, latencyMs, health, ...(error ? { error } : {}) };
		},

		// The check and the transition it causes are one transaction under the server row's lock: however many
		// replicas check at once, each transition is seen (and published) exactly once.
		async recordHealth(
			this: McpThis,
			organizationId: string,
			serverId: string,
			ok: boolean,
			latencyMs: number | null,
			error?: string
		): Promise<Health> {
			const cfg = this.cfg;
			let changed: { from: Health; to: Health; name: string } | undefined;
			const health = await this.withEvents(async (tx, publish) => {
				const row = (
					await tx.query<{
						name: string;
						health: Health;
						consecutive_failures: number;
						consecutive_successes: number;
					}>(
						"SELECT name, health, consecutive_failures, consecutive_successes FROM mcp_servers WHERE id = $1 AND organization_id = $2 FOR UPDATE",
						[serverId, organizationId]
					)
				).rows[0];
				if (!row) return "unknown" as Health;
				const failures = ok ? 0 : row.consecutive_failures + 1;
				const successes = ok ? row.consecutive_successes + 1 : 0;
				let next: Health = row.health;
				if (ok && row.health !== "healthy" && (row.health === "unknown" || successes >= cfg.healthRecoveries))
					next = "healthy";
				if (!ok && row.health !== "unhealthy" && failures >= cfg.healthFailures) next = "unhealthy";
				await tx.query(
					`UPDATE mcp_servers SET consecutive_failures = $2, consecutive_successes = $3, health = $4,
						last_error = CASE WHEN $5::text IS NULL THEN last_error ELSE $5 END,
						health_changed_at = CASE WHEN health <> $4 THEN now() ELSE health_changed_at END
					 WHERE id = $1`,
					[serverId, failures, successes, next, error ?? null]
				);
				await tx.query(
					"INSERT INTO mcp_health_checks (organization_id, server_id, ok, latency_ms, error, health) VALUES ($1, $2, $3, $4, $5, $6)",
					[organizationId, serverId, ok, latencyMs, error ?? null, next]
				);
				if (next !== row.health) {
					changed = { from: row.health, to: next, name: row.name };
					publish("mcp.server.health.changed", {
						organizationId,
						serverId,
						serverName: row.name,
						from: row.health,
						to: next,
						...(error ? { error } : {})
					});
				}
				return next;
			});
			await this.dropCaches(["mcp-servers"]);
			if (changed)
				announceChange(this.broker, undefined, {
					organizationId,
					entity: "mcp-servers",
					noun: "MCP server",
					id: serverId,
					action: "updated",
					label: changed.name,
					permission: "mcp:read"
				});
			return health;
		},

		// Claims the servers due for a health check or a discovery (one replica each: SKIP LOCKED) and runs them.
		async tick(this: McpThis) {
			const db = await getDb();
			const claim = async (column: string, every: number) => {
				if (!every) return [];
				const r = await db.query<{ id: string; organization_id: string }>(
					`UPDATE mcp_servers SET ${column} = now() + $1 * interval '1 millisecond'
					 WHERE id IN (SELECT id FROM mcp_servers WHERE enabled AND ${column} <= now()
						AND (transport <> 'stdio' OR $2) ORDER BY ${column} LIMIT ${CLAIM_BATCH} FOR UPDATE SKIP LOCKED)
					 RETURNING id, organization_id`,
					[every, this.cfg.stdioEnabled]
				);
				return r.rows;
			};
			for (const s of await claim("next_health_at", this.cfg.healthIntervalMs))
				await this.checkHealth(s.organization_id, s.id).catch(err =>
					this.logger.warn(`health check of MCP server ${s.id}: ${(err as Error).message}`)
				);
			for (const s of await claim("next_refresh_at", this.cfg.refreshIntervalMs))
				await this.discover(s.organization_id, s.id).catch(err =>
					this.logger.warn(`discovery of MCP server ${s.id}: ${(err as Error).message}`)
				);
		}
	}
};
