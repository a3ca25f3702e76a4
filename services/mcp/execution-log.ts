// The execution log: every tool call is one `mcp_executions` row, written with its events after the call, off the
// caller's path. Arguments and results are stored with the server's secret values replaced and cut to LOG_KEEP_BYTES.
import type { Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { redact } from "../../lib/redact";
import type { ExecutionRecord, McpThis } from "./mcp.types";

// How much of an argument or result the log keeps.
const LOG_KEEP_BYTES = 64 * 1024;

// A stored copy of a JSON value with the server's secret values removed, cut to LOG_KEEP_BYTES.
function logged(value: unknown, secrets: string[]): unknown {
	if (value === undefined) return null;
	const text = redact(JSON.stringify(value), secrets);
	if (text.length <= LOG_KEEP_BYTES) return JSON.parse(text);
	return { truncated: true, bytes: text.length, preview: text.slice(0, LOG_KEEP_BYTES) };
}

export const ExecutionLog: Partial<ServiceSchema> = {
	methods: {
		// The log row and its events, in one transaction, off the caller's path (stopping waits for them).
		record(this: McpThis, rec: ExecutionRecord) {
			const write = this.withEvents(async (tx, publish) => {
				await tx.query(
					`INSERT INTO mcp_executions (id, organization_id, server_id, server_name, tool, user_id, api_key_id,
						arguments, result, is_error, outcome, error, duration_ms, started_at)
					 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
					[
						rec.id,
						rec.organizationId,
						rec.server.id,
						rec.server.name,
						rec.tool,
						rec.auth.userId ?? null,
						rec.auth.apiKeyId ?? null,
						JSON.stringify(logged(rec.args, rec.secrets)),
						JSON.stringify(logged(rec.result, rec.secrets)),
						rec.isError,
						rec.outcome,
						rec.error ?? null,
						rec.durationMs,
						rec.startedAt
					]
				);
				const base = {
					organizationId: rec.organizationId,
					executionId: rec.id,
					serverId: rec.server.id,
					serverName: rec.server.name,
					tool: rec.tool,
					...(rec.auth.userId ? { userId: rec.auth.userId } : {}),
					...(rec.auth.apiKeyId ? { apiKeyId: rec.auth.apiKeyId } : {})
				};
				publish("mcp.tool.execution.started", base);
				if (rec.outcome === "completed" || rec.outcome === "error")
					publish("mcp.tool.execution.completed", {
						...base,
						durationMs: rec.durationMs,
						isError: rec.isError,
						...(rec.error ? { error: rec.error } : {})
					});
				else
					publish("mcp.tool.execution.failed", {
						...base,
						durationMs: rec.durationMs,
						outcome: rec.outcome,
						error: rec.error ?? rec.outcome
					});
			}).catch(err => this.logger.error(`execution ${rec.id} not logged: ${(err as Error).message}`));
			this.writes.add(write);
			void write.finally(() => this.writes.delete(write));
		},

		async flush(this: McpThis) {
			while (this.writes.size) await Promise.all([...this.writes]);
		}
	},

	created(this: Service) {
		(this as McpThis).writes = new Set();
	}
};
