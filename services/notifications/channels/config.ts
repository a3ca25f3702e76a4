// Checks shared by the channel kinds' configurations.
import { invalid } from "../../../lib/errors";
import { SECRET_ENVIRONMENT, SECRET_NAME } from "../../../mixins/secrets-client.mixin";
import type { SecretName } from "./types";

export type Obj = Record<string, unknown>;

export function objectOf(v: unknown, field: string): Obj {
	if (!v || typeof v !== "object" || Array.isArray(v)) throw invalid(field, "must be an object");
	return v as Obj;
}

export function only(o: Obj, allowed: string[], field: string) {
	for (const k of Object.keys(o))
		if (!allowed.includes(k)) throw invalid(`${field}.${k}`, `is not a setting (expected ${allowed.join(", ")})`);
}

export function text(o: Obj, key: string, field: string, opts: { optional?: boolean; max?: number } = {}) {
	const v = o[key];
	if (v === undefined && opts.optional) return undefined;
	if (typeof v !== "string" || !v.trim()) throw invalid(`${field}.${key}`, "must be a non-empty string");
	if (v.length > (opts.max ?? 500)) throw invalid(`${field}.${key}`, `must be at most ${opts.max ?? 500} characters`);
	return v.trim();
}

// A secret of the secrets module, by environment and name: { environment, name }.
export function secretName(v: unknown, field: string): SecretName {
	const o = objectOf(v, field);
	only(o, ["environment", "name"], field);
	const environment = o.environment ?? "production";
	if (typeof environment !== "string" || !SECRET_ENVIRONMENT.test(environment))
		throw invalid(`${field}.environment`, "is not an environment name");
	if (typeof o.name !== "string" || !SECRET_NAME.test(o.name)) throw invalid(`${field}.name`, "is not a secret name");
	return { environment, name: o.name };
}

// Takes the secret's value out of a message meant for logs and users, whatever produced it.
export function scrub(message: string, secrets: string[]): string {
	let out = message;
	for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join("[secret]");
	return out.slice(0, 1000);
}
