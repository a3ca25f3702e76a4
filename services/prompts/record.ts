// The execution row of a render or completion, and its prompts.rendered event (in the caller's transaction).
import type { Queryable } from "../../lib/db";
import type { Publish } from "../../mixins/events.mixin";
import type { Assigned, Resolved } from "./prompts.types";
import type { Scope } from "./store";

export interface RecordExtra {
	subject?: string;
	requestId?: string;
	latencyMs?: number;
	usage?: { prompt_tokens?: number; completion_tokens?: number };
	cost?: number;
	success?: boolean;
	error?: string;
	assigned?: Assigned | null;
}

export async function recordExecution(
	tx: Queryable,
	publish: Publish,
	scope: Scope,
	r: Resolved,
	kind: "render" | "complete",
	extra: RecordExtra
): Promise<string> {
	// In an experiment, success is the caller's to report (feedback): only a failure is known now.
	const success = extra.assigned && extra.success ? null : (extra.success ?? null);
	const { rows } = await tx.query<{ id: string }>(
		`INSERT INTO prompts_executions (organization_id, template_id, version_id, kind, subject, user_id, request_id,
			latency_ms, prompt_tokens, completion_tokens, success, error, variant_id, experiment_id, cost)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
		[
			scope.organizationId,
			r.template.id,
			r.version.id,
			kind,
			extra.subject ?? null,
			scope.auth?.userId ?? null,
			extra.requestId ?? null,
			extra.latencyMs ?? null,
			extra.usage?.prompt_tokens ?? null,
			extra.usage?.completion_tokens ?? null,
			success,
			extra.error ?? null,
			extra.assigned?.variantId ?? null,
			extra.assigned?.experimentId ?? null,
			extra.cost ?? null
		]
	);
	publish("prompts.rendered", {
		organizationId: scope.organizationId ?? undefined,
		templateId: r.template.id,
		name: r.template.name,
		versionId: r.version.id,
		executionId: rows[0].id,
		kind,
		variantId: extra.assigned?.variantId ?? null,
		experimentId: extra.assigned?.experimentId ?? null,
		latencyMs: extra.latencyMs,
		success: success ?? undefined
	});
	return rows[0].id;
}
