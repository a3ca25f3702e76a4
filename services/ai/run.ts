// One AI request as the service carries it from admission to its log row: what was asked, for whom, what it tried.
import type { AuthInfo } from "../../lib/permissions";
import type { Reservation } from "../../lib/rate-limit";
import type { UsageReservation } from "../../mixins/usage-limits.mixin";
import type { PromptRef } from "./ai.types";
import { estimateTokens, Usage } from "./usage";
import type { AIUsage } from "./ai.events";

export interface Target {
	requested: string;
	chain: string[];
	body: Record<string, any>; // what goes upstream
	tags: string[];
	cache?: boolean;
	firstTokenTimeoutMs?: number;
}

export type RequestKind = "chat" | "embedding";

export interface Run {
	requestId: string;
	org: string;
	cfg: any; // the organization's AI set-up, one snapshot for the whole request
	auth: AuthInfo;
	target: Target;
	started: number;
	events: { id: string; type: string }[]; // outbox events, written with the next log batch
	path: string[];
	controller: AbortController;
	kind: RequestKind;
	stream: boolean;
	reservation?: Reservation; // tokens held against the tokens-per-minute limits until the call settles
	usageReservation?: UsageReservation; // its estimate held against the usage module's quotas and budgets
	secrets: string[]; // every secret value sent upstream for this request: cut out of whatever it answers
	served?: ServedBy; // once answered: who answered, and how it got there
	prompt?: PromptRef; // the managed prompt (template, version, variant) it was rendered from
	cost?: number; // once recorded: what the request cost, as its log row says
	countedOnRun?: Set<string>; // function tools whose calls are counted where they run (AiContext meta)
}

// Which model answered and the path the request took (every deployment tried, `<model>@<provider>:<outcome>`), as
// clients see it: `coder` in ai.complete's answer, the `done` line of ai.stream, the /v1 x-coder-* headers.
export interface ServedBy {
	requested_model: string;
	served_model: string;
	provider: string | null;
	fallback_path: string[];
	cache_hit: boolean;
}

export function servedBy(run: Run, model: string, provider: { name: string } | null, cacheHit = false): ServedBy {
	return {
		requested_model: run.target.requested,
		served_model: model,
		provider: provider?.name ?? null,
		fallback_path: [...run.path],
		cache_hit: cacheHit
	};
}

// How a request ended, as its completion-log row records it.
export interface Outcome {
	status: "success" | "error" | "cancelled" | "rate_limited";
	error?: string;
	servedModel?: string;
	provider?: { id: string };
	usage?: Usage;
	cost?: number;
	response?: unknown;
	firstTokenMs?: number;
	cacheHit?: boolean;
}

// What a request is expected to use, reserved against token limits before it runs: its prompt, plus the output cap
// it asks for. Output beyond the estimate (a request without a cap) is counted when the request settles.
export function estimateOf(kind: RequestKind, body: Record<string, any>): number {
	if (kind === "embedding") return estimateTokens(body.input);
	return estimateTokens(body.messages ?? body.input) + outputCapOf(body);
}
export const outputCapOf = (body: Record<string, any>): number =>
	body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens ?? 0;

// The metering event of a request's outcome (ai.usage.recorded), or none when nothing reached a model or the cache:
// refused before it ran, or failed without a token produced.
export function usageEvent(run: Run, r: Outcome): AIUsage | undefined {
	const u = r.usage;
	const tokens = u ? u.prompt + u.completion : 0;
	if (r.status === "rate_limited" || (!r.cacheHit && tokens === 0)) return undefined;
	type Call = { function?: { name?: string } };
	const response = r.response as { tool_calls?: Call[]; choices?: { message?: { tool_calls?: Call[] } }[] };
	const counted = (calls: Call[] | undefined) =>
		calls && calls.filter(c => !run.countedOnRun?.has(c?.function?.name ?? "")).length;
	const toolCalls =
		counted(response?.tool_calls) ??
		response?.choices?.reduce((n, c) => n + (counted(c.message?.tool_calls) ?? 0), 0) ??
		0;
	return {
		requestId: run.requestId,
		organizationId: run.org,
		...(run.auth.userId ? { userId: run.auth.userId } : {}),
		...(run.auth.apiKeyId ? { apiKeyId: run.auth.apiKeyId } : {}),
		...(run.auth.service ? { service: run.auth.service } : {}),
		kind: run.kind === "embedding" ? "embedding" : "completion",
		requestedModel: run.target.requested,
		model: r.servedModel ?? run.target.requested,
		...(r.provider?.id ? { providerId: r.provider.id } : {}),
		status: r.status,
		cacheHit: r.cacheHit ?? false,
		inputTokens: u?.prompt ?? 0,
		outputTokens: u?.completion ?? 0,
		cachedTokens: u?.cached ?? 0,
		cacheWriteTokens: u?.cacheWrite ?? 0,
		toolCalls,
		cost: r.cacheHit ? 0 : (r.cost ?? 0),
		occurredAt: new Date().toISOString()
	};
}
