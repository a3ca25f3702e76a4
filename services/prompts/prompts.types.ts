// What the prompts service's files share: what a reference resolves to, a version's content, and `this` of the service.
import type { InFlight } from "../../lib/in-flight";
import type { CallingOptions, Context } from "moleculer";
import type { Queryable } from "../../lib/db";
import type { ChangeAction } from "../../lib/live";
import type { LocalCache } from "../../lib/local-cache";
import type { Publish } from "../../mixins/events.mixin";
import { checkVariablesUsed, type ChatMessage, type PartialLoader } from "./render";
import type { Scope, Store, TemplateRow, VersionRow } from "./store";
import type { RunningExperiment } from "./experiments.store";
import type { RecordExtra } from "./record";
import { checkDefinitions, type VariableDef } from "./variables";

// What a (template, label or version) resolved to, as one replica keeps it.
export interface Resolved {
	name: string;
	template: Pick<TemplateRow, "id" | "name" | "organization_id" | "overrides_template_id">;
	version: VersionRow;
	label: string | null;
	// The experiment running on the label, when one does: renders pick one of its variants.
	experiment?: RunningExperiment;
}

// What the completion log links a completion to (ai's meta `prompt`).
export interface PromptRef {
	templateId: string;
	versionId: string;
	variantId: string | null;
}

// Which variant of a running experiment a render used.
export interface Assigned {
	experimentId: string;
	variantId: string;
}

export interface VersionInput {
	messages: ChatMessage[];
	variables?: VariableDef[];
	model_settings?: Record<string, unknown>;
	note?: string;
}

export interface RefParams {
	name: string;
	label?: string;
	version?: number;
	variables?: Record<string, unknown>;
	subject?: string;
	requestId?: string;
}

type AiCall = (
	ctx: Context,
	action: "ai.complete" | "ai.stream",
	params: Record<string, unknown>,
	prompt: PromptRef
) => Promise<{ result: any; cost?: number }>;

export interface Self {
	broker: Context["broker"];
	// The streams this replica relays (prompts.stream), by request id (CancellableMixin).
	inFlight: InFlight;
	resolved: LocalCache<Resolved>;
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	scopeOf(ctx: Context): Scope;
	mayManage(ctx: Context): boolean;
	changed(name: string, live?: { ctx: Context; id: string; action: ChangeAction }): Promise<void>;
	detail(store: Store, t: TemplateRow): Promise<unknown>;
	publishIn(store: Store, publish: Publish, t: TemplateRow, v: VersionInput): Promise<VersionRow>;
	resolve(scope: Scope, ref: { name: string; label?: string; version?: number }): Promise<Resolved>;
	renderRef(
		ctx: Context,
		p: RefParams
	): Promise<{ resolved: Resolved; messages: ChatMessage[]; assigned: Assigned | null }>;
	partialLoader(scope: Scope): PartialLoader;
	callAi: AiCall;
	completeNow(ctx: Context<RefParams & { model?: string }>): Promise<unknown>;
	callAiAs: AiCall;
	// ServiceIdentityMixin: a call as service prompts for an organization without a user.
	callForOrganization(
		organizationId: string,
		action: string,
		params: unknown,
		opts?: CallingOptions
	): Promise<unknown>;
	record(scope: Scope, r: Resolved, kind: "render" | "complete", extra: RecordExtra): Promise<string>;
	createIn(scope: Scope, p: any, ctx?: Context): Promise<unknown>;
}

// A template row as clients read it.
export const shape = (t: TemplateRow) => ({ ...t, shared: t.organization_id === null });

// A version's declarations and messages, checked before it is written.
export function checkVersion(v: VersionInput) {
	checkDefinitions(v.variables ?? []);
	checkVariablesUsed(
		v.messages,
		(v.variables ?? []).map(d => d.name)
	);
}
