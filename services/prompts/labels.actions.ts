// The label actions of the prompts service: labels are movable pointers at versions; a protected one (production,
// unless changed) moves only with prompts:manage; every move is recorded, and a rollback moves a label back.
import type { Context } from "moleculer";
import { forbidden, invalid } from "../../lib/errors";
import type { Publish } from "../../mixins/events.mixin";
import { getDb as db } from "../../lib/db";
import { labelName } from "./prompts.params";
import * as R from "./prompts.responses";
import { Store, type TemplateRow, type VersionRow } from "./store";
import type { Self } from "./prompts.types";

export const labelActions = {
	labels: {
		rest: "GET /:id/labels",
		permission: "prompts:read",
		params: { id: "string" },
		response: { type: "array", items: R.PromptLabel },
		async handler(this: Self, ctx: Context<{ id: string }>) {
			const store = new Store(await db(), this.scopeOf(ctx));
			return labelsOf(store, (await store.visible(ctx.params.id)).id);
		}
	},

	// Points a label at a version (creating the label). A protected label (production, unless changed) moves only
	// with prompts:manage, which is also needed to set `protected`.
	moveLabel: {
		rest: "PUT /:id/labels/:label",
		permission: "prompts:write",
		params: {
			id: "string",
			label: labelName,
			version: { type: "number", integer: true, positive: true, convert: true, label: "Version" },
			protected: { type: "boolean", optional: true }
		},
		response: R.LabelMoveResult,
		async handler(this: Self, ctx: Context<{ id: string; label: string; version: number; protected?: boolean }>) {
			const { id, label, version } = ctx.params;
			const mayManage = this.mayManage(ctx);
			if (ctx.params.protected !== undefined && !mayManage)
				throw forbidden("protecting a label requires permission prompts:manage");
			const { t, result } = await this.withEvents(async (tx, publish) => {
				const store = new Store(tx, this.scopeOf(ctx));
				const t = await store.own(id);
				const v = await store.version(t.id, version);
				return { t, result: await moveIn(store, publish, t, label, v, mayManage, ctx.params.protected) };
			});
			await this.changed(t.name, { ctx, id: t.id, action: "updated" });
			return result;
		}
	},

	removeLabel: {
		rest: "DELETE /:id/labels/:label",
		permission: "prompts:write",
		params: { id: "string", label: labelName },
		response: R.PromptLabel,
		async handler(this: Self, ctx: Context<{ id: string; label: string }>) {
			const { t, removed } = await this.withEvents(async (tx, publish) => {
				const store = new Store(tx, this.scopeOf(ctx));
				const t = await store.own(ctx.params.id);
				const [before] = (await labelsOf(store, t.id)).filter(l => l.name === ctx.params.label);
				const gone = await store.removeLabel(t.id, ctx.params.label, this.mayManage(ctx));
				publish("prompts.label.moved", {
					organizationId: t.organization_id ?? undefined,
					templateId: t.id,
					name: t.name,
					label: gone.name,
					fromVersionId: gone.version_id,
					toVersionId: null
				});
				return { t, removed: before };
			});
			await this.changed(t.name, { ctx, id: t.id, action: "updated" });
			return removed;
		}
	},

	// Where each label was and went, newest first (`?label=` for one).
	labelHistory: {
		rest: "GET /:id/label-moves",
		permission: "prompts:read",
		params: { id: "string", label: { ...labelName, optional: true } },
		response: R.LabelMoves,
		async handler(this: Self, ctx: Context<{ id: string; label?: string }>) {
			const store = new Store(await db(), this.scopeOf(ctx));
			return store.labelMoves((await store.visible(ctx.params.id)).id, ctx.params.label);
		}
	},

	// Rollback: the label goes back to where it was before its last move (or to `version`), recorded as a move.
	rollback: {
		rest: "POST /:id/rollback",
		permission: "prompts:write",
		params: {
			id: "string",
			label: { ...labelName, default: "production" },
			version: { type: "number", integer: true, positive: true, optional: true, convert: true }
		},
		response: R.LabelMoveResult,
		async handler(this: Self, ctx: Context<{ id: string; label: string; version?: number }>) {
			const { id, label, version } = ctx.params;
			const { t, result } = await this.withEvents(async (tx, publish) => {
				const store = new Store(tx, this.scopeOf(ctx));
				const t = await store.own(id);
				let target: VersionRow;
				if (version) target = await store.version(t.id, version);
				else {
					const current = await store.labelled(t.id, label);
					if (!current) throw invalid("label", `this template has no label ${label}`);
					const { rows } = await tx.query<{ from_version_id: string | null }>(
						`SELECT from_version_id FROM prompts_label_moves WHERE template_id = $1 AND label = $2 AND to_version_id = $3
							 ORDER BY created_at DESC, id LIMIT 1`,
						[t.id, label, current.id]
					);
					const previous = rows[0]?.from_version_id;
					if (!previous) throw invalid("label", `label ${label} has no earlier version to go back to`);
					const { rows: v } = await tx.query<VersionRow>("SELECT * FROM prompts_versions WHERE id = $1", [
						previous
					]);
					target = v[0];
				}
				return { t, result: await moveIn(store, publish, t, label, target, this.mayManage(ctx)) };
			});
			await this.changed(t.name, { ctx, id: t.id, action: "updated" });
			return result;
		}
	}
};

export async function labelsOf(store: Store, templateId: string) {
	return (await store.labels(templateId)).map(l => ({
		name: l.name,
		version: l.version,
		version_id: l.version_id,
		protected: l.protected,
		updated_by: l.updated_by,
		updated_at: l.updated_at
	}));
}

export async function moveIn(
	store: Store,
	publish: Publish,
	t: TemplateRow,
	label: string,
	v: VersionRow,
	mayManage: boolean,
	protect?: boolean
) {
	const { label: saved, from } = await store.moveLabel(t.id, label, v, mayManage, protect);
	if (from !== v.id)
		publish("prompts.label.moved", {
			organizationId: t.organization_id ?? undefined,
			templateId: t.id,
			name: t.name,
			label,
			fromVersionId: from,
			toVersionId: v.id
		});
	const fromNumber = from
		? ((await store.db.query<{ number: number }>("SELECT number FROM prompts_versions WHERE id = $1", [from]))
				.rows[0]?.number ?? null)
		: null;
	return {
		label: {
			name: saved.name,
			version: v.number,
			version_id: v.id,
			protected: saved.protected,
			updated_by: saved.updated_by,
			updated_at: saved.updated_at
		},
		from_version: fromNumber
	};
}
