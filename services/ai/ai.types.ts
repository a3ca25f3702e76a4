// What the ai service's methods see as `this`, and the shapes they pass around.
import type { Readable } from "stream";
import type { Context, Service } from "moleculer";
import type { Queryable } from "../../lib/db";
import { TenantSql } from "../../lib/db/tenant";
import type { InFlight } from "../../lib/in-flight";
import type { LocalCache } from "../../lib/local-cache";
import { Settings } from "../../mixins/org-settings.mixin";
import { RateLimitMethods } from "../../mixins/rate-limit.mixin";
import type { UsageLimitsMethods } from "../../mixins/usage-limits.mixin";
import { CompletionCache } from "./cache";
import { LogWriter } from "./log-writer";
import { DeploymentHealth, Deployment } from "./router";
import { Outcome, RequestKind, Run, ServedBy } from "./run";
import { UpstreamClients } from "./upstream";
import type { Credentials, Upstream } from "./upstream";
import { Usage } from "./usage";
import type { Api } from "./ai.params";

export interface AiThis extends Service, RateLimitMethods, UsageLimitsMethods {
	health: DeploymentHealth;
	upstreams: UpstreamClients;
	cache: CompletionCache;
	logWriter: LogWriter;
	inFlight: InFlight;
	orgConfigs: LocalCache<OrgConfig>;
	withEvents<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
	readSettings(t: TenantSql): Promise<Settings>;
	resolveSecret(ref: { organizationId: string; environment: string; name: string }): Promise<string>;
	orgConfig(t: TenantSql): Promise<OrgConfig>;
	loadOrgConfig(t: TenantSql): Promise<OrgConfig>;
	begin(ctx: Context<any>, kind: RequestKind, stream: boolean, api?: Api): Promise<Run>;
	checkLimits(run: Run, model: string): Promise<void>;
	settleTokens(run: Run, tokens: number): Promise<void>;
	interrupted(
		run: Run,
		s: { deployment: Deployment; provider: any; model: string; firstTokenMs: number; usage: Usage; text?: string },
		status: "error" | "cancelled",
		error: string
	): Promise<void>;
	withFallbacks<T>(run: Run, attempt: AttemptFn<T>): Promise<Served<T>>;
	providerCredentials(run: Run, provider: any): Promise<Credentials>;
	completeChat(run: Run): Promise<unknown>;
	streamChat(run: Run): Promise<Readable>;
	embed(run: Run, params: any): Promise<unknown>;
	finish(
		run: Run,
		r: {
			deployment: Deployment;
			provider: any;
			model: string;
			usage: Usage;
			response: unknown;
			firstTokenMs?: number;
		}
	): Promise<void>;
	fail(run: Run, err: unknown): Promise<Error>;
	record(run: Run, r: Outcome): Promise<void>;
}

export interface OrgConfig {
	providers: Map<string, any>;
	models: any[];
	deploymentNames: Set<string>; // every deployment's name, enabled or not
	presets: any[];
	rules: any[];
	chains: any[];
	limits: any[];
	settings: Settings;
}

export interface PromptRef {
	templateId: string;
	versionId: string;
	variantId?: string | null;
}

// Who served a request, handed back to the caller in its context's meta (merged back across the transporter): the
// /v1 routes turn it into x-coder-* headers, before a stream's first byte.
// `prompt`: which managed prompt the request was rendered from (set by the prompts module), kept in the completion log.
// `aiCost`: what ai.complete's request cost, for a caller that records it (prompts.complete).
// `countedOnRun`: function tools whose calls the caller has counted where they run (an agent run's MCP tools), left
// out of the completion's tool calls so that each call counts once.
export type AiContext = Context<
	any,
	{ aiServed?: ServedBy; aiCost?: number; prompt?: PromptRef; countedOnRun?: string[] }
>;

export type AttemptFn<T> = (
	d: Deployment,
	upstream: Upstream,
	signal: AbortSignal,
	control: AbortController
) => Promise<T>;
export type Served<T> = { result: T; deployment: Deployment; provider: any; model: string; control: AbortController };
