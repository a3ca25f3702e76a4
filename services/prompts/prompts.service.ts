// prompts: versioned chat templates with typed variables, movable labels, organization overrides of shared
// templates, and rendering (liquidjs, render.ts) with or without a completion by the ai module. What is resolved for
// a (template, label) is kept per replica until a version is published or a label moves anywhere (broadcast
// `prompts.changed`). SQL lives in store.ts, variables in variables.ts, the diff in diff.ts; the label actions in
// labels.actions.ts, the operator's shared-template actions in shared.actions.ts.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb as db } from "../../lib/db";
import { authOf, holds } from "../../lib/authz";
import { tenantSql } from "../../lib/db/tenant";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange, type ChangeAction } from "../../lib/live";
import { conflict, invalid, notFound } from "../../lib/errors";
import { ServiceIdentityMixin } from "../../mixins/service-identity.mixin";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { LocalCacheMixin } from "../../mixins/local-cache.mixin";
import { diffVersions } from "./diff";
import { partialText, renderMessages, type PartialLoader } from "./render";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { Scope, Store, TemplateRow } from "./store";
import { bindVariables } from "./variables";
import { labelName, referenceParams, templateMeta, templateName, versionParams } from "./prompts.params";
import { labelActions, labelsOf, moveIn } from "./labels.actions";
import { sharedActions } from "./shared.actions";
import { completionActions, completionMethods, renderedBy } from "./completion.actions";
import {
	checkVersion,
	shape,
	type Assigned,
	type RefParams,
	type Resolved,
	type Self,
	type VersionInput
} from "./prompts.types";
import { variantFor } from "./experiments";
import { recordExecution, type RecordExtra } from "./record";
import { ExperimentStore } from "./experiments.store";
import * as R from "./prompts.responses";
import { pageOf } from "../../lib/response";
import "./prompts.events";

const RESOLVED_MAX = 10_000;
// A move drops an entry at once on every replica the writer knows of. A replica that has just joined may be unknown
// to the writer for a moment and miss a drop: the time to live bounds what that leaves.
const RESOLVED_TTL_MS = 30_000;

const key = (scope: Scope, name: string, ref: string) => `${scope.organizationId ?? "shared"}\u0000${name}\u0000${ref}`;
const PromptsService: ServiceSchema = {
	name: "prompts",
	mixins: [
		EventsMixin,
		ServiceIdentityMixin,
		// The streams this replica relays (prompts.stream), by request id, for a client's cancel.
		CancellableMixin("prompts.cancel", why => new Error(why), { drainOnStop: true }),
		LocalCacheMixin<Resolved, { name: string }>("resolved", {
			max: RESOLVED_MAX,
			ttlMs: RESOLVED_TTL_MS,
			dropOn: { "prompts.changed": changed => r => r.name === changed.name }
		})
	],
	settings: { rest: "/prompts" },

	actions: {
		// A page of the templates the organization sees (its own, and shared ones it has not overridden), by name.
		list: {
			rest: "GET /",
			permission: "prompts:read",
			params: {
				search: { type: "string", max: 200, optional: true },
				tag: { type: "string", max: 50, optional: true },
				page: { type: "number", integer: true, positive: true, max: 100_000, default: 1, convert: true },
				pageSize: { type: "number", integer: true, positive: true, max: 100, default: 100, convert: true }
			},
			response: pageOf(R.PromptTemplate),
			async handler(this: Self, ctx: Context<{ search?: string; tag?: string; page: number; pageSize: number }>) {
				const page = await new Store(await db(), this.scopeOf(ctx)).list(ctx.params);
				return { ...page, rows: page.rows.map(shape) };
			}
		},

		get: {
			rest: "GET /:id",
			permission: "prompts:read",
			params: { id: "string" },
			response: R.PromptTemplateDetail,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const store = new Store(await db(), this.scopeOf(ctx));
				return this.detail(store, await store.visible(ctx.params.id));
			}
		},

		// A new template and its version 1, labelled `label` when given.
		create: {
			rest: "POST /",
			permission: "prompts:write",
			params: { name: templateName, ...templateMeta, ...versionParams, label: { ...labelName, optional: true } },
			response: R.PromptTemplateDetail,
			handler(this: Self, ctx: Context<any>) {
				return this.createIn(this.scopeOf(ctx), ctx.params, ctx);
			}
		},

		update: {
			rest: "PATCH /:id",
			permission: "prompts:write",
			params: { id: "string", ...templateMeta },
			response: R.PromptTemplateDetail,
			async handler(this: Self, ctx: Context<{ id: string; description?: string; tags?: string[] }>) {
				const { id, description, tags } = ctx.params;
				const out = await this.withEvents(async tx => {
					const store = new Store(tx, this.scopeOf(ctx));
					const t = await store.own(id);
					const { rows } = await tx.query<TemplateRow>(
						`UPDATE prompts_templates SET description = COALESCE($2, description), tags = COALESCE($3, tags),
						 updated_at = now() WHERE id = $1 RETURNING *`,
						[t.id, description ?? null, tags ?? null]
					);
					return this.detail(store, rows[0]);
				});
				const { template } = out as { template: TemplateRow };
				await this.changed(template.name, { ctx, id: template.id, action: "updated" });
				return out;
			}
		},

		// Removes a template with every version, label and execution (an override: the shared one shows again).
		remove: {
			rest: "DELETE /:id",
			permission: "prompts:manage",
			params: { id: "string" },
			response: R.PromptTemplate,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const t = await this.withEvents(async tx => {
					const store = new Store(tx, this.scopeOf(ctx));
					const t = await store.own(ctx.params.id);
					await tx.query("DELETE FROM prompts_templates WHERE id = $1", [t.id]);
					return t;
				});
				await this.changed(t.name, { ctx, id: t.id, action: "removed" });
				return shape(t);
			}
		},

		// A new immutable version; with `label`, the label moves to it (a protected one only with prompts:manage).
		publish: {
			rest: "POST /:id/versions",
			permission: "prompts:write",
			params: { id: "string", ...versionParams, label: { ...labelName, optional: true } },
			response: R.PromptVersion,
			async handler(this: Self, ctx: Context<VersionInput & { id: string; label?: string }>) {
				const { id, label, ...input } = ctx.params;
				checkVersion(input);
				const { t, v } = await this.withEvents(async (tx, publish) => {
					const store = new Store(tx, this.scopeOf(ctx));
					const t = await store.own(id);
					const v = await this.publishIn(store, publish, t, input);
					if (label) await moveIn(store, publish, t, label, v, this.mayManage(ctx));
					return { t, v };
				});
				await this.changed(t.name, { ctx, id: t.id, action: "updated" });
				return { ...v, labels: label ? [label] : [] };
			}
		},

		versions: {
			rest: "GET /:id/versions",
			permission: "prompts:read",
			params: { id: "string" },
			response: R.PromptVersions,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const store = new Store(await db(), this.scopeOf(ctx));
				return store.versions((await store.visible(ctx.params.id)).id);
			}
		},

		version: {
			rest: "GET /:id/versions/:version",
			permission: "prompts:read",
			params: { id: "string", version: { type: "number", integer: true, positive: true, convert: true } },
			response: R.PromptVersion,
			async handler(this: Self, ctx: Context<{ id: string; version: number }>) {
				const store = new Store(await db(), this.scopeOf(ctx));
				const t = await store.visible(ctx.params.id);
				const found = (await store.versions(t.id)).find(v => v.number === ctx.params.version);
				if (!found) throw notFound("prompt version");
				return found;
			}
		},

		// What changed from one version to another (messages line by line, variables, model settings).
		diff: {
			rest: "GET /:id/diff",
			permission: "prompts:read",
			params: {
				id: "string",
				from: { type: "number", integer: true, positive: true, convert: true },
				to: { type: "number", integer: true, positive: true, convert: true }
			},
			response: R.PromptDiff,
			async handler(this: Self, ctx: Context<{ id: string; from: number; to: number }>) {
				const store = new Store(await db(), this.scopeOf(ctx));
				const t = await store.visible(ctx.params.id);
				const [a, b] = [
					await store.version(t.id, ctx.params.from, "from"),
					await store.version(t.id, ctx.params.to, "to")
				];
				return diffVersions(a, b);
			}
		},

		...labelActions,

		// The organization's own copy of a shared template, starting from the shared production version (or the
		// content given), labelled production. From then on the organization sees its copy under the same name.
		override: {
			rest: "POST /:id/override",
			permission: "prompts:write",
			params: {
				id: "string",
				messages: { ...versionParams.messages, optional: true },
				variables: versionParams.variables,
				model_settings: versionParams.model_settings,
				note: versionParams.note
			},
			response: R.PromptTemplateDetail,
			async handler(this: Self, ctx: Context<Partial<VersionInput> & { id: string }>) {
				const { id, ...content } = ctx.params;
				const scope = this.scopeOf(ctx);
				const out = await this.withEvents(async (tx, publish) => {
					const store = new Store(tx, scope);
					const shared = await store.visible(id);
					if (shared.organization_id !== null)
						throw invalid("id", "only a shared prompt template can be overridden");
					const base =
						(await store.labelled(shared.id, "production")) ?? (await store.versions(shared.id))[0];
					const input: VersionInput = {
						messages: content.messages ?? base.messages,
						variables: content.variables ?? (content.messages ? [] : base.variables),
						model_settings: content.model_settings ?? (content.messages ? {} : base.model_settings),
						note: content.note ?? `override of ${shared.name} version ${base.number}`
					};
					checkVersion(input);
					const t = await store
						.insertTemplate({
							name: shared.name,
							description: shared.description,
							tags: shared.tags,
							overrides_template_id: shared.id
						})
						.catch(err => {
							throw err?.code === "23505"
								? conflict("this organization already has a template with this name", "id")
								: err;
						});
					publish("prompts.override.created", {
						organizationId: scope.organizationId ?? undefined,
						templateId: t.id,
						name: t.name,
						overridesTemplateId: shared.id
					});
					const v = await this.publishIn(store, publish, t, input);
					await moveIn(store, publish, t, "production", v, true);
					return this.detail(store, t);
				});
				const { template } = out as { template: TemplateRow };
				await this.changed(template.name, { ctx, id: template.id, action: "created" });
				return out;
			}
		},

		// name + label (default production) or version + variables → the rendered messages and model settings, and
		// which template and version produced them. Recorded as an execution (prompts.rendered).
		render: {
			rest: "POST /render",
			permission: "prompts:read",
			params: { ...referenceParams, requestId: { type: "string", max: 100, optional: true } },
			response: R.Rendered,
			async handler(this: Self, ctx: Context<RefParams>) {
				const started = Date.now();
				const { resolved, messages, assigned } = await this.renderRef(ctx, ctx.params);
				const executionId = await this.record(this.scopeOf(ctx), resolved, "render", {
					subject: ctx.params.subject,
					requestId: ctx.params.requestId,
					latencyMs: Date.now() - started,
					success: true,
					assigned
				});
				return {
					messages,
					model_settings: resolved.version.model_settings,
					...renderedBy(resolved, executionId, assigned)
				};
			}
		},

		// A draft (messages, variable declarations, model settings) rendered with sample values before it is
		// published: the checks of publish and render, the same sandbox and limits. Partials are the caller's
		// organization's (and shared) templates by name, as a render would use. A preview is not a use: no execution
		// is recorded and no event is emitted.
		preview: {
			rest: "POST /preview",
			permission: "prompts:read",
			params: {
				messages: versionParams.messages,
				variables: versionParams.variables,
				model_settings: versionParams.model_settings,
				values: { type: "object", optional: true, label: "Sample values" }
			},
			response: R.Preview,
			async handler(this: Self, ctx: Context<VersionInput & { values?: Record<string, unknown> }>) {
				const { values, ...draft } = ctx.params;
				checkVersion(draft);
				const variables = bindVariables(draft.variables ?? [], values ?? {}, "values");
				const messages = await renderMessages(
					null,
					draft.messages,
					variables,
					this.partialLoader(this.scopeOf(ctx))
				);
				return { messages, model_settings: draft.model_settings ?? {} };
			}
		},

		...completionActions,
		...sharedActions
	},

	methods: {
		scopeOf(ctx: Context): Scope {
			const t = tenantSql(ctx);
			return { organizationId: t.organizationId, auth: t.auth };
		},

		mayManage(ctx: Context): boolean {
			return holds(authOf(ctx), "prompts:manage");
		},

		// Every replica drops what it resolved for the name; this one at once, before the write answers. The
		// organization's open pages are told (lib/live.ts).
		async changed(this: Self, name: string, live?: { ctx: Context; id: string; action: ChangeAction }) {
			this.resolved.dropWhere(r => r.name === name);
			await broadcast(this.broker, "prompts.changed", { name });
			if (live)
				announceChange(this.broker, live.ctx, {
					entity: "prompts",
					noun: "prompt template",
					id: live.id,
					action: live.action,
					label: name,
					permission: "prompts:read"
				});
		},

		async detail(store: Store, t: TemplateRow) {
			const [versions, labels] = [await store.versions(t.id), await labelsOf(store, t.id)];
			const template = {
				...shape(t),
				labels: Object.fromEntries(labels.map(l => [l.name, l.version])),
				latest_version: versions[0]?.number ?? 0
			};
			return { template, labels, latest: versions[0] };
		},

		async publishIn(store: Store, publish: Publish, t: TemplateRow, input: VersionInput) {
			const v = await store.insertVersion(t.id, input);
			publish("prompts.version.published", {
				organizationId: t.organization_id ?? undefined,
				templateId: t.id,
				name: t.name,
				versionId: v.id,
				version: v.number
			});
			return v;
		},

		async createIn(this: Self, scope: Scope, p: any, ctx?: Context) {
			const { name, description, tags, label, ...input } = p;
			checkVersion(input);
			const out = await this.withEvents(async (tx, publish) => {
				const store = new Store(tx, scope);
				const existing = await store.byName(name);
				if (existing?.organization_id === null && scope.organizationId)
					throw conflict("a shared prompt template has this name: override it instead", "name");
				const t = await store.insertTemplate({ name, description, tags }).catch(err => {
					throw err?.code === "23505"
						? conflict("a prompt template with this name already exists", "name")
						: err;
				});
				publish("prompts.template.created", {
					organizationId: t.organization_id ?? undefined,
					templateId: t.id,
					name: t.name,
					shared: t.organization_id === null
				});
				const v = await this.publishIn(store, publish, t, input);
				// A new template's first label is set by its author; protection applies to later moves.
				if (label) await moveIn(store, publish, t, label, v, true);
				return this.detail(store, t);
			});
			const { template } = out as { template: TemplateRow };
			await this.changed(name, ctx && { ctx, id: template.id, action: "created" });
			return out;
		},

		// The template and version a reference names, as the scope sees it, from this replica's cache when it can.
		async resolve(this: Self, scope: Scope, ref: { name: string; label?: string; version?: number }) {
			if (ref.label && ref.version) throw invalid("version", "give a label or a version, not both");
			const label = ref.version ? null : (ref.label ?? "production");
			const k = key(scope, ref.name, label ?? `#${ref.version}`);
			const hit = this.resolved.get(k);
			if (hit) return hit;
			const store = new Store(await db(), scope);
			const t = await store.byName(ref.name);
			if (!t) throw notFound("prompt template", "name");
			const version = label ? await store.labelled(t.id, label) : await store.version(t.id, ref.version!);
			if (!version) throw notFound(`label ${label} of prompt template ${ref.name}`, "label");
			// A running experiment on the label is resolved (and dropped) with it: renders stay one cache lookup.
			const experiment = label ? await ExperimentStore.running(store.db, t.id, label) : undefined;
			const resolved: Resolved = { name: ref.name, template: t, version, label, experiment };
			this.resolved.set(k, resolved);
			return resolved;
		},

		async renderRef(this: Self, ctx: Context, p: RefParams) {
			const scope = this.scopeOf(ctx);
			let resolved = await this.resolve(scope, p);
			let assigned: Assigned | null = null;
			if (resolved.experiment) {
				const variant = variantFor(resolved.experiment, {
					userId: scope.auth?.userId,
					subject: p.subject,
					requestId: p.requestId ?? ctx.requestID ?? ctx.id
				});
				resolved = { ...resolved, version: variant.version };
				assigned = { experimentId: resolved.experiment!.id, variantId: variant.id };
			}
			const variables = bindVariables(resolved.version.variables, p.variables ?? {});
			const messages = await renderMessages(
				resolved.version.id,
				resolved.version.messages,
				variables,
				this.partialLoader(scope)
			);
			return { resolved, messages, assigned };
		},

		...completionMethods,

		// Partials by name: the production version of a template the scope sees.
		partialLoader(this: Self, scope: Scope): PartialLoader {
			return async (name: string) => {
				try {
					return partialText((await this.resolve(scope, { name })).version.messages);
				} catch {
					return undefined;
				}
			};
		},

		// One execution row and its prompts.rendered event, in one transaction.
		async record(this: Self, scope: Scope, r: Resolved, kind: "render" | "complete", extra: RecordExtra) {
			return this.withEvents((tx, publish) => recordExecution(tx, publish, scope, r, kind, extra));
		}
	} as ServiceSchema["methods"]
};

export default PromptsService;
