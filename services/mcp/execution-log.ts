// The execution log: every tool call is one `mcp_executions` row, written with its events after the call, off the
// caller's path. Arguments and results are stored with the server's secret values replaced and cut to LOG_KEEP_BYTES.
import type { Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { redact } from "../../lib/redact";
import { WriteBehind } from "../../lib/write-behind";
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

// A batch waits at most this long: calls in a row share one transaction instead of each writing its own on the
// event loop and database pool the next call needs.
const BATCH_MS = 10;
const BATCH_MAX = 200;
const COLUMNS = 14;

async function writeBatch(svc: McpThis, recs: ExecutionRecord[]) {
	await svc.withEvents(async (tx, publish) => {
		const values: unknown[] = [];
		const rows = recs.map(rec => {
			const at = values.length;
			values.push(
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
			);
			return `(${Array.from({ length: COLUMNS }, (_, i) => `$${at + i + 1}`).join(", ")})`;
		});
		await tx.query(
			`INSERT INTO mcp_executions (id, organization_id, server_id, server_name, tool, user_id, api_key_id,
				arguments, result, is_error, outcome, error, duration_ms, started_at)
			 VALUES ${rows.join(", ")}`,
			values
		);
		for (const rec of recs) {
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
		}
	});
}

export const ExecutionLog: Partial<ServiceSchema> = {
	methods: {
		// The log row and its events, off the caller's path: batched, one transaction a batch (stopping waits).
		record(this: McpThis, rec: ExecutionRecord) {
			this.executionLog.add(rec);
		},

		async flush(this: McpThis) {
			await this.executionLog.flush();
		}
	},

	created(this: Service) {
		const self = this as McpThis;
		self.executionLog = new WriteBehind<ExecutionRecord>({
			max: BATCH_MAX,
			ms: BATCH_MS,
			write: recs => writeBatch(self, recs),
			failed: (rec, err) => self.logger.error(`execution ${rec.id} not logged: ${err.message}`)
		});
	}
};
