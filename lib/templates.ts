// The platform's sandboxed template language: liquidjs in its strict, own-property-only mode (conditionals, loops,
// filters) with no file system of its own and bounded time, work and memory per render. A template reaches only the
// variables it is given: prototype and constructor properties do not exist. Used by prompts (services/prompts/
// render.ts, with partials it loads itself) and notifications (services/notifications/render.ts).
import { Liquid, type FS, type LiquidOptions } from "liquidjs";

// Where `{% render 'x' %}` / `{% include 'x' %}` look: nowhere unless the user of the sandbox says so.
const NO_FILES: FS = {
	exists: async () => false,
	existsSync: () => false,
	readFile: async file => {
		throw new Error(`no template named ${JSON.stringify(file)}`);
	},
	readFileSync: file => {
		throw new Error(`no template named ${JSON.stringify(file)}`);
	},
	resolve: (_dir, file) => file,
	contains: async () => true,
	containsSync: () => true
};

export interface SandboxOptions {
	fs?: FS;
	// Undefined names are errors (prompts: a typo must not reach a model); a notification renders them empty.
	strictVariables?: boolean;
	renderLimitMs?: number;
}

export function createSandbox(o: SandboxOptions = {}): Liquid {
	const options: LiquidOptions = {
		strictVariables: o.strictVariables ?? true,
		strictFilters: true,
		ownPropertyOnly: true,
		// Partials are read at each render (they may change): never cached by path.
		cache: false,
		relativeReference: false,
		root: [""],
		partials: [""],
		layouts: [""],
		fs: o.fs ?? NO_FILES,
		parseLimit: 200_000,
		renderLimit: o.renderLimitMs ?? 250,
		memoryLimit: 10_000_000
	};
	return new Liquid(options);
}
