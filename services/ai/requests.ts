// One AI request from start to record: the model (or preset) it means, its rate limits and token reservation,
// its outcome as the client sees it, and its completion-log row.
import crypto from "crypto";
import { Errors } from "moleculer";
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { isUuid, tenantSql } from "../../lib/db/tenant";
import { makeEvent } from "../../lib/events/outbox";
import { Limit } from "../../mixins/rate-limit.mixin";
import { completionValues } from "./log-writer";
import { Deployment } from "./router";
import { estimateOf, Outcome, RequestKind, Run, usageEvent } from "./run";
import { classify, clientError } from "./upstream";
import { costOf, Usage } from "./usage";
import { limitSubject } from "./limit-usage";
import { usageChargeOf } from "./usage-charge";
import { amountsOf } from "../../lib/usage-limits";
import { UsageLimitExceeded } from "../../mixins/usage-limits.mixin";
import { AiThis, OrgConfig, PromptRef } from "./ai.types";
import { FIELDS, Api } from "./ai.params";
// The preset a model name means: none when a deployment has that name, unless the preset was saved to override it
// (presets saved before that choice existed could still collide; the real model wins for them).
export function presetFor(cfg: OrgConfig, name: string): any {
	const preset = cfg.presets.find(c => c.name === name);
	return preset && (preset.overrides_model || !cfg.deploymentNames.has(name)) ? preset : undefined;
}

// The managed prompt a caller (the prompts module, the /v1 route) says the request was rendered from: meta only
// services set, never a client's parameter; anything not shaped like one is ignored.
function promptRefOf(meta: any): PromptRef | undefined {
	const p = meta?.prompt;
	if (!p || !isUuid(p.templateId) || !isUuid(p.versionId)) return undefined;
	return { templateId: p.templateId, versionId: p.versionId, variantId: isUuid(p.variantId) ? p.variantId : null };
}

// The function tools an agent run counts where their calls run (AiContext `countedOnRun`): meta only services set.
function countedOnRunOf(meta: any): Pick<Run, "countedOnRun"> {
	const names = meta?.countedOnRun;
	if (!Array.isArray(names) || !names.length) return {};
	return { countedOnRun: new Set(names.filter((n: unknown): n is string => typeof n === "string")) };
}

export const RequestMethods: Partial<ServiceSchema> = {
	methods: {
		// Resolves the request's model or configuration, checks rate limits, and registers it for cancellation.
		async begin(
			this: AiThis,
			ctx: Context<any>,
			kind: RequestKind,
			stream: boolean,
			api: Api = kind === "chat" ? "chat" : "embeddings"
		): Promise<Run> {
			const t = tenantSql(ctx);
			const auth = t.auth!;
			const org = t.organizationId;
			const cfg = await this.orgConfig(t);
			const p = ctx.params;
			const body: Record<string, any> = {};
			for (const k of FIELDS[api]) if (p[k] !== undefined) body[k] = p[k];
			let model = p.model;
			const preset = presetFor(cfg, model);
			if (preset && api === "responses") {
				model = preset.model;
				if (body.temperature === undefined && preset.temperature !== null)
					body.temperature = Number(preset.temperature);
				if (body.max_output_tokens === undefined && preset.max_tokens !== null)
					body.max_output_tokens = preset.max_tokens;
				if (body.instructions === undefined && preset.system_prompt) body.instructions = preset.system_prompt;
			} else if (preset && api === "chat") {
				model = preset.model;
				if (body.temperature === undefined && preset.temperature !== null)
					body.temperature = Number(preset.temperature);
				if (body.max_tokens === undefined && preset.max_tokens !== null) body.max_tokens = preset.max_tokens;
				if (body.response_format === undefined && preset.response_format)
					body.response_format = preset.response_format;
				if (preset.system_prompt)
					body.messages = [{ role: "system", content: preset.system_prompt }, ...body.messages];
			}
			const chainRow = cfg.chains.find((c: any) => c.model === model);
			const chain = [model, ...(chainRow?.fallbacks ?? [])].filter(
				(m: string, i: number, all: string[]) => all.indexOf(m) === i
			);
			if (!chain.some((m: string) => cfg.models.some((d: any) => d.name === m && d.kind === kind)))
				throw new Errors.MoleculerClientError(
					`model "${p.model}" does not exist or has no enabled ${kind} deployment`,
					404,
					"MODEL_NOT_FOUND",
					[{ field: "model", message: "unknown model" }]
				);
			const run: Run = {
				requestId: p.requestId ?? ctx.requestID ?? crypto.randomUUID(),
				org,
				cfg,
				auth,
				target: {
					requested: p.model,
					chain,
					body,
					tags: p.tags ?? [],
					cache: p.cache,
					firstTokenTimeoutMs: chainRow?.first_token_timeout_ms ?? undefined
				},
				started: Date.now(),
				events: [],
				path: [],
				controller: new AbortController(),
				kind,
				stream,
				secrets: [],
				prompt: promptRefOf(ctx.meta),
				...countedOnRunOf(ctx.meta)
			};
			await this.checkLimits(run, model);
			try {
				// Announced now (with the next batch), not with the request's outcome: a long stream is seen as started.
				const started = { requestId: run.requestId, model: p.model, organizationId: org };
				await this.logWriter.add({ events: [makeEvent("ai.completion.started", started)] });
			} catch (err) {
				await this.settleTokens(run, 0);
				await this.settleUsage(run.usageReservation, undefined);
				throw err;
			}
			this.inFlight.add(run.requestId, run.controller);
			return run;
		},

		// Every limit of the organization that applies to this request, counted for its subject (RateLimitMixin), then
		// the usage module's quotas and budgets (UsageLimitsMixin); a refusal is logged as a rate-limited request.
		async checkLimits(this: AiThis, run: Run, model: string) {
			const limits: Limit[] = [];
			for (const l of run.cfg.limits) {
				if (l.model && l.model !== model && l.model !== run.target.requested) continue;
				const subject = limitSubject(l, run.org, run.auth, model);
				if (!subject) continue;
				const scope = l.model ? `${l.scope}:${l.model}` : l.scope;
				const perMinute = { requestsPerMinute: l.requests_per_minute, tokensPerMinute: l.tokens_per_minute };
				limits.push({ scope, key: `${l.id}:${subject}`, ...perMinute });
			}
			run.reservation = await this.admitLimits(limits, estimateOf(run.kind, run.target.body), async (l, kind) => {
				run.events.push(
					makeEvent("ai.ratelimit.exceeded", {
						organizationId: run.org,
						userId: run.auth.userId,
						scope: l.scope
					})
				);
				await this.record(run, { status: "rate_limited", error: `rate limit ${l.scope}: ${kind}` });
			});
			try {
				run.usageReservation = await this.reserveUsage(usageChargeOf(run));
			} catch (err) {
				await this.settleTokens(run, 0);
				if (err instanceof UsageLimitExceeded)
					await this.record(run, { status: "rate_limited", error: err.message });
				throw err;
			}
		},

		// A stream that ended before its model finished (broken upstream, or its consumer gone): what it used is
		// settled and logged, with what arrived when there is text to keep.
		async interrupted(
			this: AiThis,
			run: Run,
			s: {
				deployment: Deployment;
				provider: any;
				model: string;
				firstTokenMs: number;
				usage: Usage;
				text?: string;
			},
			status: "error" | "cancelled",
			error: string
		) {
			await this.settleTokens(run, s.usage.prompt + s.usage.completion);
			await this.record(run, {
				status,
				error,
				servedModel: s.model,
				provider: s.provider,
				firstTokenMs: s.firstTokenMs,
				usage: s.usage,
				cost: costOf(s.usage, s.deployment),
				...(s.text === undefined ? {} : { response: { content: s.text } })
			});
		},

		// Replaces the request's token reservation by what it really used (0: nothing reached a model); once.
		async settleTokens(this: AiThis, run: Run, tokens: number) {
			const reservation = run.reservation;
			run.reservation = undefined;
			await this.settleLimits(reservation, tokens);
		},

		async finish(
			this: AiThis,
			run: Run,
			r: {
				deployment: Deployment;
				provider: any;
				model: string;
				usage: Usage;
				response: any;
				firstTokenMs?: number;
			}
		) {
			const tokens = r.usage.prompt + r.usage.completion;
			run.events.push(
				makeEvent("ai.completion.completed", {
					requestId: run.requestId,
					model: r.model,
					tokensUsed: tokens,
					durationMs: Date.now() - run.started,
					organizationId: run.org
				})
			);
			await this.settleTokens(run, tokens);
			await this.record(run, {
				status: "success",
				servedModel: r.model,
				provider: r.provider,
				usage: r.usage,
				cost: costOf(r.usage, r.deployment),
				response: r.response,
				firstTokenMs: r.firstTokenMs
			});
		},

		// Turns any failure into the client's error and records it; the upstream's words are kept, its keys never.
		async fail(this: AiThis, run: Run, err: unknown): Promise<Error> {
			await this.settleTokens(run, 0);
			if (err instanceof Errors.MoleculerError) return err;
			const f = classify(err, run.controller.signal, run.secrets);
			if (f.kind !== "cancelled")
				run.events.push(
					makeEvent("ai.completion.failed", {
						requestId: run.requestId,
						model: run.target.requested,
						error: f.message,
						organizationId: run.org
					})
				);
			await this.record(run, { status: f.kind === "cancelled" ? "cancelled" : "error", error: f.message }).catch(
				() => undefined
			);
			return clientError(f);
		},

		// One completion-log row and the request's events, written together (batched off the request's path).
		async record(this: AiThis, run: Run, r: Outcome) {
			run.cost = r.cost;
			const metered = usageEvent(run, r);
			if (metered) run.events.push(makeEvent("ai.usage.recorded", metered));
			// Quotas and budgets are settled to what the metering event bills (nothing reached a model: released), in
			// the period it is counted in (its occurredAt), off the answer's path: until it lands the reservation still
			// holds the estimate.
			const reservation = run.usageReservation;
			run.usageReservation = undefined;
			void this.settleUsage(reservation, metered && amountsOf(metered), metered?.occurredAt);
			const events = run.events.splice(0);
			await this.logWriter.add({ events, values: completionValues(run, r, run.cfg.settings.storeContent) });
		}
	}
};

export default RequestMethods;
