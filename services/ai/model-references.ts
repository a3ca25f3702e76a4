// Configuration that names models (presets, routing rules, fallback chains, rate limits) is checked against the organization's
// real deployments when it is saved: a name nothing serves would be listed as usable and then fail every request.
import type { TenantSql } from "../../lib/db/tenant";
import { conflict, invalid } from "../../lib/errors";

export type Values = Record<string, any>;
// Checks `values` (the row as it will be) for the fields a write `changed`.
export type ConfigCheck = (t: TenantSql, values: Values, changed: Set<string>) => Promise<void>;

async function deploymentNames(t: TenantSql, kind?: string): Promise<Set<string>> {
	const rows = await t.rows<{ name: string }>(
		`SELECT DISTINCT name FROM ai_deployments WHERE organization_id = $org${kind ? " AND kind = $1" : ""}`,
		kind ? [kind] : []
	);
	return new Set(rows.map(r => r.name));
}

const unknown = (field: string, name: string, what = "deployment") =>
	invalid(field, `unknown model "${name}": no ${what} of this organization is named so`);

export const checkPreset: ConfigCheck = async (t, v, changed) => {
	if (changed.has("model") && !(await deploymentNames(t, "chat")).has(v.model))
		throw unknown("model", v.model, "chat deployment");
	if ((changed.has("name") || changed.has("overrides_model")) && !v.overrides_model) {
		if ((await deploymentNames(t)).has(v.name))
			throw conflict(
				`a deployment is named "${v.name}": a preset of that name would take over its requests; ` +
					"rename the preset, or set overrides_model to take them over on purpose",
				"name"
			);
	}
};

export const checkRoutingRule: ConfigCheck = async (t, v, changed) => {
	if (changed.has("model") && !(await deploymentNames(t)).has(v.model)) throw unknown("model", v.model);
};

export const checkFallbackChain: ConfigCheck = async (t, v, changed) => {
	const names = await deploymentNames(t);
	if (changed.has("model") && !names.has(v.model)) throw unknown("model", v.model);
	if (changed.has("fallbacks"))
		(v.fallbacks as string[]).forEach((name, i) => {
			if (!names.has(name)) throw unknown(`fallbacks[${i}]`, name);
		});
};

// A limit counts requests for a model by the name asked for (a deployment or a preset) or the one that served them.
export const checkRateLimit: ConfigCheck = async (t, v, changed) => {
	if (!changed.has("model") && !changed.has("scope")) return;
	if (v.scope === "model" && !v.model) throw invalid("model", "a limit that applies to one model names the model");
	if (!v.model || !changed.has("model")) return;
	const names = await deploymentNames(t);
	const presets = await t.rows<{ name: string }>("SELECT name FROM ai_presets WHERE organization_id = $org");
	for (const p of presets) names.add(p.name);
	if (!names.has(v.model)) throw unknown("model", v.model, "deployment or preset");
};
