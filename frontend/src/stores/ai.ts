// ai: the current organization's AI gateway set-up (providers and their deployments, presets, routing rules,
// fallback chains, rate limits, settings), the completion log with its filters, and the playground: a conversation
// streamed token by token as `ai.stream` over the app's one socket (stores/realtime.ts `stream`: OpenAI chunks, then
// a line with `done` and usage, or one with `error`; cancelling stops the request upstream). Switching organization
// or signing out stops what runs and empties everything.
import { defineStore } from "pinia";
import { computed, reactive, ref, watch } from "vue";
import type { ApiError } from "@/lib/api";
import { useAuthStore } from "./auth";
import { useRealtimeStore } from "./realtime";
import { useCrud, useOrgScope } from "@/lib/use-crud";
import {
	aiApi,
	type AiSettings,
	type AvailableModel,
	type CompletionLog,
	type LogQuery,
	type LogStatus,
	type LogTotals
} from "@/api/ai.api";

// ---- Playground types -------------------------------------------------------------------------------------------

export type TurnStatus = "waiting" | "streaming" | "done" | "stopped" | "error";

export interface ReadableError {
	title: string;
	detail: string;
	code: string;
}

export interface Turn {
	id: number;
	role: "user" | "assistant";
	content: string;
	// Assistant turns only.
	model?: string;
	status?: TurnStatus;
	requestId?: string;
	error?: ReadableError;
	usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
	firstTokenMs?: number;
	durationMs?: number;
}

// An error of the platform (REST, socket ack or a stream's `ai:error`) in words a user can act on.
export function readableError(code: string | undefined, message: string | undefined, status?: number): ReadableError {
	const c = code ?? "ERROR";
	const text = (message ?? "").trim();
	const sentence = text ? text.charAt(0).toUpperCase() + text.slice(1) : "";
	const generic = !text || /^internal error$/i.test(text);
	switch (c) {
		case "RATE_LIMITED": {
			// "rate limit exceeded (model:gpt-4o); retry in 12s", or the socket's own "too many calls on this connection".
			const wait = /retry in (\d+)\s*s/i.exec(text)?.[1];
			const scope = /\(([^)]+)\)/.exec(text)?.[1];
			if (!scope)
				return {
					code: c,
					title: "Rate limited",
					detail: sentence || "Too many requests; wait a moment and try again."
				};
			const [kind, model] = scope.split(":");
			const whose: Record<string, string> = {
				organization: "The organization's",
				user: "Your",
				api_key: "This API key's",
				model: "The model's"
			};
			return {
				code: c,
				title: "Rate limited",
				detail: `${whose[kind] ?? "A"} rate limit${model ? ` for ${model}` : ""} is used up for this minute.${wait ? ` Try again in ${wait} s.` : ""}`
			};
		}
		case "UPSTREAM_RATE_LIMITED":
			return {
				code: c,
				title: "The provider is rate limiting",
				detail: sentence || "Every deployment and fallback answered 429. Try again shortly."
			};
		case "MODEL_NOT_FOUND":
			return {
				code: c,
				title: "Model not found",
				detail: sentence || "No enabled deployment serves this model."
			};
		case "UPSTREAM_REFUSED":
			return { code: c, title: "The provider refused the request", detail: sentence };
		case "UPSTREAM_FAILED":
			return {
				code: c,
				title: status === 504 ? "The model did not answer in time" : "The provider failed",
				detail: generic
					? "Every deployment and fallback of this model was tried. Check the provider's URL, key and health."
					: sentence
			};
		case "upstream_error":
		case "connection":
		case "timeout":
		case "server_error":
		case "first_token_timeout":
			return {
				code: c,
				title: "The answer was cut off",
				detail: sentence || "The provider stopped answering mid-way."
			};
		case "CANCELLED":
		case "cancelled":
			return { code: c, title: "Stopped", detail: "The request was cancelled." };
		case "FORBIDDEN":
			return {
				code: c,
				title: "Not allowed",
				detail: "Using models needs the member role or higher in this organization."
			};
		case "UNAUTHORIZED":
			return { code: c, title: "Signed out", detail: "Your session has ended. Please sign in again." };
		case "VALIDATION_ERROR":
			return { code: c, title: "Invalid request", detail: sentence };
		case "SERVICE_UNAVAILABLE":
			return {
				code: c,
				title: "AI service unavailable",
				detail: "The AI service did not answer in time or is not running. Try again."
			};
		case "OFFLINE":
		case "DISCONNECTED":
			return {
				code: c,
				title: "Connection lost",
				detail: sentence || "The live connection dropped; the answer may be incomplete."
			};
		default:
			return {
				code: c,
				title: status && status >= 500 ? "Server error" : "Request failed",
				detail: generic ? "Something went wrong on the server." : sentence
			};
	}
}

// ---- The store --------------------------------------------------------------------------------------------------

export const useAiStore = defineStore("ai", () => {
	const auth = useAuthStore();
	const realtime = useRealtimeStore();

	const settings = ref<AiSettings | null>(null);
	const models = ref<AvailableModel[] | null>(null);
	// The configuration tables (the list of model names changes with each write).
	const forgetModels = () => (models.value = null);
	const providerOps = useCrud(aiApi.providers, forgetModels);
	const deploymentOps = useCrud(aiApi.deployments, forgetModels);
	const presetOps = useCrud(aiApi.presets, forgetModels);
	const routingRuleOps = useCrud(aiApi.routingRules, forgetModels);
	const fallbackChainOps = useCrud(aiApi.fallbackChains, forgetModels);
	const rateLimitOps = useCrud(aiApi.rateLimits, forgetModels);
	const providers = providerOps.items;
	const deployments = deploymentOps.items;
	const presets = presetOps.items;
	const routingRules = routingRuleOps.items;
	const fallbackChains = fallbackChainOps.items;
	const rateLimits = rateLimitOps.items;

	// The completion log and its filters, kept while the user moves between pages.
	const logFilters = reactive<{
		model: string;
		status: LogStatus | "";
		userId: string;
		from: string;
		to: string;
		limit: number;
	}>({
		model: "",
		status: "",
		userId: "",
		from: "",
		to: "",
		limit: 100
	});
	const logs = ref<CompletionLog[] | null>(null);
	const logTotals = ref<LogTotals | null>(null);

	// The playground: settings and the conversation.
	const playground = reactive({ model: "", temperature: 0.7, useTemperature: true, system: "" });
	const turns = ref<Turn[]>([]);
	const running = computed(
		() =>
			turns.value.find(t => t.role === "assistant" && (t.status === "waiting" || t.status === "streaming")) ??
			null
	);

	function reset() {
		settings.value = null;
		models.value = null;
		logs.value = null;
		logTotals.value = null;
		Object.assign(logFilters, { model: "", status: "", userId: "", from: "", to: "", limit: 100 });
		stopAll("Switched organization.");
		turns.value = [];
		playground.model = "";
		playground.system = "";
	}
	const { load } = useOrgScope(reset);
	// Signed out: what runs stops with the session.
	watch(
		() => auth.accessToken,
		token => !token && stopAll("Signed out.")
	);

	// A provider's deployments go with it (ON DELETE CASCADE).
	async function removeProvider(id: string) {
		await providerOps.remove(id);
		deployments.value = deployments.value?.filter(d => d.provider_id !== id) ?? null;
	}

	const loadModels = () =>
		load(
			() => aiApi.models(),
			m => (models.value = m)
		);
	const loadSettings = () =>
		load(
			() => aiApi.settings(),
			s => (settings.value = s)
		);
	async function configure(body: Partial<AiSettings>) {
		const s = await aiApi.configure(body);
		settings.value = s;
		return s;
	}

	// Every model name known to the set-up: deployed models and presets, for the selects of the other pages.
	const modelNames = computed(() => {
		const names = new Set<string>();
		for (const d of deployments.value ?? []) names.add(d.name);
		for (const c of presets.value ?? []) names.add(c.name);
		for (const m of models.value ?? []) names.add(m.id);
		return [...names].sort((a, b) => a.localeCompare(b));
	});

	// Only the answer to the latest request is shown, however the responses arrive.
	let logRequest = 0;
	async function loadLogs() {
		const mine = ++logRequest;
		const q: LogQuery = { limit: logFilters.limit };
		if (logFilters.model) q.model = logFilters.model;
		if (logFilters.status) q.status = logFilters.status;
		if (logFilters.userId) q.userId = logFilters.userId;
		// Dates are days in the user's time zone: from its start, to the end of the "to" day.
		if (logFilters.from) q.from = new Date(`${logFilters.from}T00:00:00`).toISOString();
		if (logFilters.to) {
			const end = new Date(`${logFilters.to}T00:00:00`);
			end.setDate(end.getDate() + 1);
			q.to = end.toISOString();
		}
		await load(
			() => aiApi.logs(q),
			r => {
				if (mine !== logRequest) return;
				logs.value = r.rows;
				logTotals.value = r.totals;
			}
		);
	}

	// ---- Playground: the chat stream ---------------------------------------------------------------------------

	// How to stop each running answer (by turn id).
	const cancels = new Map<number, () => void>();
	const started = new Map<number, number>();
	function finish(turn: Turn) {
		const t0 = started.get(turn.id);
		if (t0) turn.durationMs = Date.now() - t0;
		started.delete(turn.id);
		cancels.delete(turn.id);
	}

	// One item of ai.stream: an OpenAI chunk, the closing line ({ done, usage }), or an upstream failure ({ error }).
	function onItem(turn: Turn, item: any) {
		// After Stop, whatever was already on its way is ignored.
		if (turn.status !== "waiting" && turn.status !== "streaming") return;
		if (item?.done) {
			turn.status = "done";
			turn.usage = item.usage;
			finish(turn);
		} else if (item?.error) {
			turn.status = "error";
			turn.error = readableError(item.error.code, item.error.message);
			finish(turn);
		} else {
			let text = "";
			for (const c of item?.choices ?? []) text += c?.delta?.content ?? "";
			if (text) {
				if (turn.status === "waiting") turn.firstTokenMs = Date.now() - started.get(turn.id)!;
				turn.status = "streaming";
				turn.content += text;
			}
		}
	}

	let nextTurn = 1;

	// Sends the user's message with the conversation so far; the answer streams into a new assistant turn.
	function send(text: string) {
		const model = playground.model;
		if (!model || !text.trim() || running.value) return;
		// The exchanges so far that got an answer (a stopped one keeps what arrived); failed ones are left out.
		const history: { role: string; content: string }[] = [];
		turns.value.forEach((t, i) => {
			const answer = turns.value[i + 1];
			if (
				t.role === "user" &&
				answer?.role === "assistant" &&
				(answer.status === "done" || answer.status === "stopped") &&
				answer.content
			)
				history.push({ role: "user", content: t.content }, { role: "assistant", content: answer.content });
		});
		const messages = [
			...(playground.system.trim() ? [{ role: "system", content: playground.system.trim() }] : []),
			...history,
			{ role: "user", content: text }
		];
		turns.value.push({ id: nextTurn++, role: "user", content: text });
		turns.value.push({ id: nextTurn++, role: "assistant", content: "", model, status: "waiting" });
		// The reactive turn, so that changes below reach the screen.
		const turn = turns.value[turns.value.length - 1];
		started.set(turn.id, Date.now());
		const params: Record<string, unknown> = { model, messages };
		if (playground.useTemperature) params.temperature = Number(playground.temperature);
		const cancel = realtime.stream("ai.stream", params, {
			start: requestId => (turn.requestId = requestId),
			data: item => onItem(turn, item),
			end: () => {
				// A stream that ends without its closing line was cut off.
				if (turn.status !== "waiting" && turn.status !== "streaming") return;
				turn.status = "error";
				turn.error = readableError("DISCONNECTED", undefined);
				finish(turn);
			},
			error: (e: ApiError) => {
				if (turn.status !== "waiting" && turn.status !== "streaming") return;
				turn.status = "error";
				turn.error = readableError(e.code, e.message, e.status);
				finish(turn);
			}
		});
		cancels.set(turn.id, cancel);
	}

	// Stop: the server cancels the upstream request; what arrived so far stays, marked as stopped.
	function stop() {
		const turn = running.value;
		if (!turn) return;
		const cancel = cancels.get(turn.id);
		turn.status = "stopped";
		finish(turn);
		cancel?.();
	}

	function stopAll(reason: string) {
		for (const t of turns.value)
			if (t.role === "assistant" && (t.status === "waiting" || t.status === "streaming")) {
				const cancel = cancels.get(t.id);
				t.status = "error";
				t.error = { code: "CANCELLED", title: "Stopped", detail: reason };
				finish(t);
				cancel?.();
			}
	}

	function clearConversation() {
		if (running.value) stop();
		turns.value = [];
	}

	// Sends the last user message again (after an error), dropping the failed answer.
	function retry() {
		const last = turns.value[turns.value.length - 1];
		if (!last || last.role !== "assistant" || running.value) return;
		const question = turns.value[turns.value.length - 2];
		if (!question || question.role !== "user") return;
		turns.value.splice(turns.value.length - 2, 2);
		return send(question.content);
	}

	return {
		providers,
		deployments,
		presets,
		routingRules,
		fallbackChains,
		rateLimits,
		settings,
		models,
		modelNames,
		logFilters,
		logs,
		logTotals,
		playground,
		turns,
		running,

		loadProviders: providerOps.load,
		createProvider: providerOps.create,
		updateProvider: providerOps.update,
		removeProvider,
		loadDeployments: deploymentOps.load,
		createDeployment: deploymentOps.create,
		updateDeployment: deploymentOps.update,
		removeDeployment: deploymentOps.remove,
		loadPresets: presetOps.load,
		createPreset: presetOps.create,
		updatePreset: presetOps.update,
		removePreset: presetOps.remove,
		loadRoutingRules: routingRuleOps.load,
		createRoutingRule: routingRuleOps.create,
		updateRoutingRule: routingRuleOps.update,
		removeRoutingRule: routingRuleOps.remove,
		loadFallbackChains: fallbackChainOps.load,
		createFallbackChain: fallbackChainOps.create,
		updateFallbackChain: fallbackChainOps.update,
		removeFallbackChain: fallbackChainOps.remove,
		loadRateLimits: rateLimitOps.load,
		createRateLimit: rateLimitOps.create,
		updateRateLimit: rateLimitOps.update,
		removeRateLimit: rateLimitOps.remove,
		loadModels,
		loadSettings,
		configure,
		loadLogs,

		send,
		stop,
		retry,
		clearConversation
	};
});
