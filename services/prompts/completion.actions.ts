// The completion actions of the prompts service: render, then the ai module's completion (`ai.complete`) or its
// stream (`ai.stream`, relayed over the socket), as the caller or — for a job's principal — as prompts itself; each
// recorded as an execution with its latency, tokens, cost and outcome.
import crypto from "crypto";
import type { Context } from "moleculer";
import { authOf, servicePermits } from "../../lib/authz";
import { actionMissing, forbidden, invalid, unavailable } from "../../lib/errors";
import { idempotencyKeyParam, idempotent } from "../../lib/idempotency";
import type { ChatMessage } from "./render";
import { ndjson, ndjsonReadable } from "../../lib/ndjson";
import { cancelCall } from "../../lib/cancel";
import { referenceParams } from "./prompts.params";
import type { Assigned, PromptRef, RefParams, Resolved, Self } from "./prompts.types";
import type { RecordExtra } from "./record";
import * as R from "./prompts.responses";

export const renderedBy = (r: Resolved, executionId: string, assigned: Assigned | null) => ({
	template: {
		id: r.template.id,
		name: r.template.name,
		shared: r.template.organization_id === null,
		overrides_template_id: r.template.overrides_template_id
	},
	version: { id: r.version.id, number: r.version.number },
	label: r.label,
	execution_id: executionId,
	variant_id: assigned?.variantId ?? null,
	experiment_id: assigned?.experimentId ?? null
});

const completionModel = { type: "string", min: 1, max: 200, optional: true, label: "Model" };

// What ai.complete / ai.stream get for a rendered version: its model settings, the model given before the version's,
// and `prompt` (meta) for the completion log.
function completionOf(r: Resolved, messages: ChatMessage[], assigned: Assigned | null, given?: string) {
	const { model: versionModel, ...settings } = r.version.model_settings as { model?: string };
	const model = given ?? versionModel;
	if (!model) throw invalid("model", "this prompt version names no model: give one");
	return {
		body: { ...settings, model, messages },
		prompt: { templateId: r.template.id, versionId: r.version.id, variantId: assigned?.variantId ?? null }
	};
}

// What an execution records of a call that failed.
const failure = (err: any): RecordExtra => ({ success: false, error: String(err?.message ?? err).slice(0, 500) });

export const completionActions = {
	// Renders, then completes with the ai module (`ai.complete`, as the caller — see callAi): the version's model settings, the
	// model given here before the version's. The completion log names the template and version (its `prompt`).
	complete: {
		rest: "POST /complete",
		permission: "prompts:write",
		external: true,
		params: { ...referenceParams, model: completionModel, idempotency_key: idempotencyKeyParam },
		response: R.Completed,
		// With an idempotency key, a call repeated within the window answers the first completion again.
		handler(this: Self, ctx: Context<RefParams & { model?: string; idempotency_key?: string }>) {
			const org = authOf(ctx)?.organizationId;
			if (!org || !ctx.params.idempotency_key) return this.completeNow(ctx);
			return idempotent("prompts_idempotency_keys", org, ctx.params.idempotency_key, () => this.completeNow(ctx));
		}
	},

	// complete, streamed: renders, then `ai.stream` as the caller, and returns its NDJSON as it comes (chunks, then
	// `{ done, requestId, usage, cost, coder }` or `{ error }`). The execution is recorded when the stream ends —
	// its latency, tokens and cost from the done line, or the error, or its cancellation — and the done line
	// gains `prompt`: the template, version, label, variant and execution, as complete answers them. Published
	// without a REST route: clients stream it over the socket's `stream` (services/gateway/socket-bridge.ts).
	stream: {
		permission: "prompts:write",
		external: true,
		params: { ...referenceParams, model: completionModel },
		async handler(this: Self, ctx: Context<RefParams & { model?: string }>) {
			const started = Date.now();
			const { resolved, messages, assigned } = await this.renderRef(ctx, ctx.params);
			const { body, prompt } = completionOf(resolved, messages, assigned, ctx.params.model);
			// ai runs the stream under this call's request id, which the socket's `cancel` names.
			const requestId = ctx.requestID ?? ctx.id;
			const record = (extra: RecordExtra) =>
				this.record(this.scopeOf(ctx), resolved, "complete", {
					subject: ctx.params.subject,
					requestId,
					latencyMs: Date.now() - started,
					assigned,
					...extra
				});
			let upstream: NodeJS.ReadableStream & { destroy?: () => void };
			try {
				upstream = (await this.callAi(ctx, "ai.stream", body, prompt)).result;
			} catch (err: any) {
				await record(failure(err));
				throw err;
			}
			const inFlight = this.inFlight;
			// A client's cancel (or the service stopping) closes the stream on this replica; ai stops the upstream
			// request running under the same id.
			const control = new AbortController();
			control.signal.addEventListener("abort", () => {
				out.destroy();
				cancelCall(this.broker, "ai", requestId);
			});
			const cancelled = "cancelled: the stream was closed before it ended";
			let reading = false;
			async function* relay() {
				reading = true;
				let recorded = false;
				let error = cancelled;
				try {
					for await (const item of ndjson(upstream as AsyncIterable<Buffer>)) {
						if (item?.done) {
							recorded = true;
							const executionId = await record({ usage: item.usage, cost: item.cost, success: true });
							yield { ...item, prompt: renderedBy(resolved, executionId, assigned) };
							continue;
						}
						if (item?.error) error = String(item.error.message ?? "stream interrupted").slice(0, 500);
						yield item;
					}
				} finally {
					inFlight.delete(requestId);
					upstream.destroy?.();
					if (!recorded) await record({ success: false, error }).catch(() => undefined);
				}
			}
			// Closed before anything was read: the relay never ran, so its finally cannot tidy up.
			const out = ndjsonReadable(relay(), () => {
				upstream.destroy?.();
				if (reading) return;
				inFlight.delete(requestId);
				record({ success: false, error: cancelled }).catch(() => undefined);
			});
			inFlight.add(requestId, control);
			return out;
		}
	}
};

export const completionMethods = {
	// Renders and completes (complete, past its idempotency key).
	async completeNow(this: Self, ctx: Context<RefParams & { model?: string }>) {
		const started = Date.now();
		const { resolved, messages, assigned } = await this.renderRef(ctx, ctx.params);
		const { body, prompt } = completionOf(resolved, messages, assigned, ctx.params.model);
		const requestId = crypto.randomUUID();
		const record = (extra: RecordExtra) =>
			this.record(this.scopeOf(ctx), resolved, "complete", {
				subject: ctx.params.subject,
				requestId,
				latencyMs: Date.now() - started,
				assigned,
				...extra
			});
		let completion: any, cost: number | undefined;
		try {
			({ result: completion, cost } = await this.callAi(ctx, "ai.complete", { ...body, requestId }, prompt));
		} catch (err: any) {
			await record(failure(err));
			throw err;
		}
		const executionId = await record({
			usage: completion?.usage,
			cost,
			success: true
		});
		return { completion, messages, ...renderedBy(resolved, executionId, assigned) };
	},

	// ai.complete / ai.stream for a rendered prompt, and what it cost; the ai module not running is a 503.
	async callAi(
		this: Self,
		ctx: Context,
		action: "ai.complete" | "ai.stream",
		params: Record<string, unknown>,
		prompt: PromptRef
	): Promise<{ result: any; cost?: number }> {
		try {
			return await this.callAiAs(ctx, action, params, prompt);
		} catch (err) {
			if (actionMissing(err, action)) throw unavailable("the ai module is not running");
			throw err;
		}
	},

	// A user or API key calls as itself: ai checks its role. A job's principal (a service acting for an
	// organization without a user) holds a proof for the prompts action it called, which ai would refuse: prompts
	// calls as itself for that organization (its own credential and servicePermissions, so the completion log
	// names service prompts) — only for a job that declares ai:write too, so that nothing it could not ask the AI
	// directly goes through a prompt.
	async callAiAs(
		this: Self,
		ctx: Context,
		action: "ai.complete" | "ai.stream",
		params: Record<string, unknown>,
		prompt: PromptRef
	): Promise<{ result: any; cost?: number }> {
		const auth = authOf(ctx);
		if (auth?.kind !== "service") {
			const result = await ctx.call(action, params, { meta: { prompt } });
			return { result, cost: (ctx.meta as { aiCost?: number }).aiCost };
		}
		if (!servicePermits(auth.permissions, "ai:write"))
			throw forbidden(`service ${auth.service} does not declare permission ai:write`);
		const call = this.callForOrganization(auth.organizationId!, action, params, {
			parentCtx: ctx,
			meta: { prompt }
		});
		const result = await call;
		// The call's own context holds what ai answered in meta (this context is not the one it merged into).
		return { result, cost: (call as { ctx?: Context<unknown, { aiCost?: number }> }).ctx?.meta.aiCost };
	}
};
