// ai module: /api/ai. The organization's LLM gateway: providers (OpenAI-compatible endpoints whose API key is the
// NAME of a secret in the vault, never a value), deployments of models on them with prices, presets, routing rules,
// fallback chains, rate limits, settings, and the completion log. Chat itself streams over the socket (stores/ai.ts).
import { api, crud, download, type Schema } from "@/lib/api";

export type { Page } from "@/lib/api";

export type Provider = Schema<"AiProvider">;
export type ProviderHeader = Provider["headers"][string];
export type ProviderInput = Partial<
	Pick<
		Provider,
		"name" | "kind" | "base_url" | "api_key_secret" | "api_key_environment" | "timeout_ms" | "headers" | "enabled"
	>
>;

export type ModelKind = "chat" | "embedding";
export interface Capabilities {
	tools?: boolean;
	json?: boolean;
	vision?: boolean;
}

// Prices are per million tokens.
export type Deployment = Schema<"AiDeployment">;
export interface DeploymentInput {
	provider_id?: string;
	name?: string;
	provider_model?: string;
	kind?: ModelKind;
	context_window?: number;
	capabilities?: Capabilities;
	input_price?: number;
	output_price?: number;
	cached_input_price?: number;
	cache_write_price?: number | null; // null: as input
	priority?: number;
	weight?: number;
	tags?: string[];
	enabled?: boolean;
}

export type Preset = Schema<"AiPreset">;
export interface PresetInput {
	name?: string;
	model?: string;
	temperature?: number | null;
	max_tokens?: number | null;
	system_prompt?: string | null;
	response_format?: Record<string, unknown> | null;
	overrides_model?: boolean;
}

export const STRATEGIES = ["priority", "weighted", "latency", "least-busy", "cost"] as const;
export type Strategy = (typeof STRATEGIES)[number];
export type RoutingRule = Schema<"AiRoutingRule">;
export type RoutingRuleInput = { model?: string; tag?: string | null; strategy?: Strategy };

export type FallbackChain = Schema<"AiFallbackChain">;
export type FallbackChainInput = { model?: string; fallbacks?: string[]; first_token_timeout_ms?: number | null };

export const LIMIT_SCOPES = ["organization", "user", "api_key", "model"] as const;
export type LimitScope = (typeof LIMIT_SCOPES)[number];
export type RateLimit = Schema<"AiRateLimit">;
export type RateLimitInput = {
	scope?: LimitScope;
	model?: string | null;
	requests_per_minute?: number | null;
	tokens_per_minute?: number | null;
};

// logRetentionDays null: the completion log is kept for good.
export type AiSettings = Schema<"AiSettings">;

// A name clients can use: a model with at least one enabled deployment, or a preset.
export type AvailableModel = Schema<"AvailableModel">;

export const LOG_STATUSES = ["success", "error", "cancelled", "rate_limited"] as const;
export type LogStatus = (typeof LOG_STATUSES)[number];
export type CompletionLog = Schema<"CompletionLog">;
export interface LogQuery {
	model?: string;
	status?: LogStatus;
	userId?: string;
	apiKeyId?: string;
	from?: string;
	to?: string;
	limit?: number;
}
export type LogTotals = Schema<"LogTotals">;
export type CompletionLogDetail = Schema<"CompletionLogDetail">;
export type LogStats = Schema<"LogStats">;
export type LogBucket = LogStats["bucket"];
export type RateLimitUsage = Schema<"RateLimitUsage">;

// Test connection: ok with the time it took, or why not (never the key).
export type ProviderTest = Schema<"ProviderTest">;
export type UpstreamModel = Schema<"UpstreamModel">;
export interface ImportedModel {
	provider_model: string;
	name?: string;
	kind?: ModelKind;
	context_window?: number;
	capabilities?: Capabilities;
}
// The routers' view of each deployment, merged over every AI replica ("unknown": no request has gone to it yet).
export type DeploymentHealth = Schema<"DeploymentHealth">;

const providerPath = (id: string, rest: string) => `/ai/providers/${encodeURIComponent(id)}/${rest}`;

export const aiApi = {
	providers: crud<Provider, ProviderInput>("/ai/providers"),
	deployments: crud<Deployment, DeploymentInput>("/ai/deployments"),
	presets: crud<Preset, PresetInput>("/ai/presets"),
	routingRules: crud<RoutingRule, RoutingRuleInput>("/ai/routing-rules"),
	fallbackChains: crud<FallbackChain, FallbackChainInput>("/ai/fallback-chains"),
	rateLimits: crud<RateLimit, RateLimitInput>("/ai/rate-limits"),

	models: () => api.get<AvailableModel[]>("/ai/models"),
	settings: () => api.get<AiSettings>("/ai/settings"),
	configure: (body: Partial<AiSettings>) => api.patch<AiSettings>("/ai/settings", body),
	logs: (query: LogQuery = {}) => api.get<{ rows: CompletionLog[]; totals: LogTotals }>("/ai/logs", { ...query }),
	testProvider: (id: string) => api.post<ProviderTest>(providerPath(id, "test"), {}),
	upstreamModels: (id: string) => api.get<{ models: UpstreamModel[] }>(providerPath(id, "upstream-models")),
	importModels: (id: string, models: ImportedModel[]) =>
		api.post<{ created: number; skipped: number }>(providerPath(id, "import"), { models }),
	providerHealth: () => api.get<{ replicas: number; deployments: DeploymentHealth[] }>("/ai/provider-health"),
	log: (id: string) => api.get<CompletionLogDetail>(`/ai/logs/${encodeURIComponent(id)}`),
	logStats: (query: Omit<LogQuery, "limit"> & { bucket: LogBucket }) =>
		api.get<LogStats>("/ai/logs/stats", { ...query }),
	exportLogs: (query: Omit<LogQuery, "limit">) =>
		download("/ai/logs/export", { ...query }, `completion-log-${new Date().toISOString().slice(0, 10)}.csv`),
	rateLimitUsage: () => api.get<RateLimitUsage[]>("/ai/rate-limit-usage")
};

// Agent runs (/api/ai/agent-runs): started and continued over the socket as streams of steps (pages/ai/AgentsPage.vue);
// read, decided and cancelled here too.
export type AgentRun = Schema<"AgentRun">;
export type AgentStep = Schema<"AgentStep">;
export type AgentRunDetail = Schema<"AgentRunDetail">;
export interface AgentStart {
	model: string;
	prompt: string;
	system?: string;
	tool_sets: string[];
	max_steps?: number;
	max_tokens?: number;
	max_cost?: number;
}
export interface AgentDecision {
	step_id: string;
	approve: boolean;
	reason?: string;
}
export const agentRunsApi = {
	list: (status?: string) => api.get<AgentRun[]>("/ai/agent-runs", status ? { status } : {}),
	get: (id: string) => api.get<AgentRunDetail>(`/ai/agent-runs/${id}`),
	cancel: (id: string) => api.post<AgentRun>(`/ai/agent-runs/${id}/cancel`),
	// The MCP servers an agent may use as tool-sets (empty without the mcp module or without mcp:read).
	servers: () =>
		api
			.get<{ rows: { name: string; enabled: boolean }[] }>("/mcp/servers", { pageSize: 100 })
			.then(p => p.rows.filter(s => s.enabled).map(s => s.name))
			.catch(() => [] as string[])
};
