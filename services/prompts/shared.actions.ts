// Shared templates, for the platform operator (REPL, seed scripts, a service): actions that are not published, so no
// client reaches them; every organization sees the result and none can change it (it overrides it instead).
import type { Context } from "moleculer";
import { notFound } from "../../lib/errors";
import { labelName, templateMeta, templateName, versionParams } from "./prompts.params";
import { Store } from "./store";
import { moveIn } from "./labels.actions";
import { checkVersion, type Self, type VersionInput } from "./prompts.types";

export const sharedActions = {
	createShared: {
		visibility: "public",
		params: { name: templateName, ...templateMeta, ...versionParams, label: { ...labelName, optional: true } },
		handler(this: Self, ctx: Context<any>) {
			return this.createIn({ organizationId: null }, ctx.params);
		}
	},
	publishShared: {
		visibility: "public",
		params: { name: templateName, ...versionParams, label: { ...labelName, optional: true } },
		async handler(this: Self, ctx: Context<VersionInput & { name: string; label?: string }>) {
			const { name, label, ...input } = ctx.params;
			checkVersion(input);
			const v = await this.withEvents(async (tx, publish) => {
				const store = new Store(tx, { organizationId: null });
				const found = await store.byName(name);
				if (!found) throw notFound("shared prompt template");
				const t = await store.own(found.id);
				const v = await this.publishIn(store, publish, t, input);
				if (label) await moveIn(store, publish, t, label, v, true);
				return v;
			});
			await this.changed(name);
			return v;
		}
	},
	moveSharedLabel: {
		visibility: "public",
		params: {
			name: templateName,
			label: labelName,
			version: { type: "number", integer: true, positive: true }
		},
		async handler(this: Self, ctx: Context<{ name: string; label: string; version: number }>) {
			const result = await this.withEvents(async (tx, publish) => {
				const store = new Store(tx, { organizationId: null });
				const found = await store.byName(ctx.params.name);
				if (!found) throw notFound("shared prompt template");
				const t = await store.own(found.id);
				return moveIn(store, publish, t, ctx.params.label, await store.version(t.id, ctx.params.version), true);
			});
			await this.changed(ctx.params.name);
			return result;
		}
	}
};
