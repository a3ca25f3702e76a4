// Module settings: each module declares the environment variables it reads in its manifest (`settings`), with their
// type, default and description; lib/config.ts reads and validates every module's at start-up, and README.md's
// configuration table lists them (test/platform/settings.spec.ts checks it). A bad value stops start-up naming it.
//   settings: { logBatchMs: setting.int({ env: "AI_LOG_BATCH_MS", default: 200, min: 0, max: 10_000, description }) }
// and the module's code reads them typed: `moduleSettings(manifest).logBatchMs` (lib/config.ts).

export class ConfigError extends Error {
	constructor(
		public variable: string,
		message: string
	) {
		super(`${variable}: ${message}`);
		this.name = "ConfigError";
	}
}

export type Env = Record<string, string | undefined>;

export interface Setting<T> {
	env: string; // the variable's name
	description: string;
	// Reads the variable (empty counts as unset); throws ConfigError naming it when the value is bad.
	parse(raw: string | undefined): T;
}

export type SettingValues<S> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

export function intVar(env: Env, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
	const raw = env[name];
	if (raw == null || raw === "") return def;
	const n = Number(raw);
	if (!Number.isInteger(n) || n < min || n > max)
		throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${raw}"`);
	return n;
}

interface Common {
	env: string;
	description: string;
}

export const setting = {
	int(o: Common & { default: number; min?: number; max?: number }): Setting<number> {
		const parse = (raw: string | undefined) => intVar({ [o.env]: raw }, o.env, o.default, o.min, o.max);
		return { env: o.env, description: o.description, parse };
	},
	// Free text (a key, a path); unset is undefined. Never echoed in an error.
	string(o: Common): Setting<string | undefined> {
		return { env: o.env, description: o.description, parse: raw => raw || undefined };
	},
	// Anything else: `parse` gets the value (undefined when unset) and throws Error with what is wrong; the platform
	// names the variable.
	custom<T>(o: Common & { parse: (raw: string | undefined) => T }): Setting<T> {
		return {
			env: o.env,
			description: o.description,
			parse: raw => {
				try {
					return o.parse(raw || undefined);
				} catch (err) {
					if (err instanceof ConfigError) throw err;
					throw new ConfigError(o.env, (err as Error).message);
				}
			}
		};
	}
};

export const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;

// Every setting of the given modules, read from `env`: { module: { name: value } }. Errors name the variable.
export function readModuleSettings(
	modules: { name: string; settings?: Record<string, Setting<unknown>> }[],
	env: Env
): Record<string, Record<string, unknown>> {
	const values: Record<string, Record<string, unknown>> = {};
	const reader = new Map<string, string>();
	for (const m of modules)
		for (const { env } of Object.values(m.settings ?? {})) {
			const other = reader.get(env);
			if (other) throw new Error(`module ${m.name}: setting ${env} is already declared by module "${other}"`);
			reader.set(env, m.name);
		}
	for (const m of modules) {
		values[m.name] = {};
		for (const [key, s] of Object.entries(m.settings ?? {})) values[m.name][key] = s.parse(env[s.env]);
	}
	return values;
}
