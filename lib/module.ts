// Module manifests: each module folder declares itself in services/<module>/<module>.module.ts. Every process reads
// the manifests of every module folder, loaded or not, so what one module declares (the consumer groups it reads
// channels with) is known to all: a producer declares those groups' queues before it publishes.
import fs from "fs";
import path from "path";
import type { ChannelName } from "./events/types";
import { derivePermissionTable, PERMISSION_NAME, PermissionSpec, ROLES } from "./permissions";
import { ENV_NAME, Setting } from "./settings";

export const SERVICES_DIR = path.resolve(__dirname, "../services");

// One durable subscription: the module's services read `channel` as consumer group `group` (each event is handled
// once per group). A service's group is its `channels` entry's `group`, or else the service's name.
export interface ConsumedChannel {
	channel: ChannelName;
	group: string;
}

export interface ModuleManifest {
	name: string; // the folder's name
	description: string;
	tablePrefix?: string; // every table the module owns starts with it
	publishes: ChannelName[]; // channels whose events it writes to the outbox
	// Channels it reads. After loadManifests, this also holds what `consumesAll` expands to.
	consumes: ConsumedChannel[];
	// Reads every channel any module publishes, except its own, as consumer group `group` (a notifier, an audit
	// trail): loadManifests expands it into `consumes`, so a module added later is consumed with no edit here.
	// A service takes them all with `channels: { "*": { group, handler } }` (mixins/events.mixin.ts).
	consumesAll?: { group: string };
	// Every permission its actions declare (lib/authz.ts refuses any other), with the lowest role holding it.
	permissions?: Record<string, PermissionSpec>;
	// Modules it needs first (the seed's start-up order): their migrations are applied before its own.
	dependsOn?: string[];
	// What the module's services may do when they act for an organization without a user (a job's principal,
	// mixins/service-identity.mixin.ts): permissions like "ai:write". None: they cannot act that way.
	servicePermissions?: string[];
	// The environment variables it reads, by the name its code reads them with (lib/settings.ts, `setting.int(…)`):
	// validated at start-up by lib/config.ts, listed in README.md's configuration table.
	settings?: Record<string, Setting<unknown>>;
	// HTTP routes outside /api that the gateway mounts for the module (an API in another's shape, such as OpenAI's
	// /v1): the name of a file in the module's folder, without extension, exporting them (lib/module-routes.ts).
	routes?: string;
	// What its container needs besides the shared environment (docker-compose.yml, `npm run compose`): variables
	// only it may hold (a master key, its service credential) and published ports.
	container?: { environment?: Record<string, string>; ports?: string[] };
}

export function defineModule<M extends ModuleManifest>(manifest: M): M {
	return manifest;
}

export class ManifestError extends Error {
	constructor(file: string, message: string) {
		super(`module manifest ${file}: ${message}`);
		this.name = "ManifestError";
	}
}

export function moduleNames(dir: string): string[] {
	return fs
		.readdirSync(dir, { withFileTypes: true })
		.filter(d => d.isDirectory())
		.map(d => d.name)
		.sort();
}

const NAME = /^[a-z][a-z0-9-]*$/;
const CHANNEL = /^[a-z][a-z0-9-]*\.events$/;

function manifestFile(dir: string, mod: string): string {
	for (const ext of [".module.ts", ".module.js"]) {
		const file = path.join(dir, mod, mod + ext);
		if (fs.existsSync(file)) return file;
	}
	throw new ManifestError(path.join(dir, mod, `${mod}.module.ts`), "missing: every module folder declares itself");
}

function readManifest(dir: string, mod: string): ModuleManifest {
	const file = manifestFile(dir, mod);
	const exported = require(file);
	const m: Partial<ModuleManifest> = exported?.default ?? exported;
	const fail = (message: string) => new ManifestError(path.relative(process.cwd(), file), message);
	if (m?.name !== mod) throw fail(`name must be "${mod}" (its folder), got ${JSON.stringify(m?.name)}`);
	if (typeof m.description !== "string" || !m.description) throw fail("description is missing");
	if (!Array.isArray(m.publishes) || !Array.isArray(m.consumes)) throw fail("publishes and consumes must be lists");
	for (const channel of [...m.publishes, ...m.consumes.map(c => c?.channel)])
		if (typeof channel !== "string" || !CHANNEL.test(channel))
			throw fail(`channel ${JSON.stringify(channel)} is not a name like "${mod}.events"`);
	for (const c of m.consumes)
		if (typeof c.group !== "string" || !NAME.test(c.group))
			throw fail(`consumer group ${JSON.stringify(c.group)} is not a name`);
	if (m.consumesAll !== undefined && (typeof m.consumesAll?.group !== "string" || !NAME.test(m.consumesAll.group)))
		throw fail(`consumesAll: group ${JSON.stringify(m.consumesAll?.group)} is not a name`);
	if (m.permissions !== undefined && (typeof m.permissions !== "object" || Array.isArray(m.permissions)))
		throw fail('permissions must be an object: { "<module>:<verb>": { description, role } }');
	for (const [name, spec] of Object.entries(m.permissions ?? {})) {
		if (!PERMISSION_NAME.test(name)) throw fail(`permission ${JSON.stringify(name)} is not "<module>:<verb>"`);
		// One name per module: its permissions carry its name, so a permission says which module it belongs to.
		if (!name.startsWith(`${mod}:`))
			throw fail(`permission "${name}" does not start with "${mod}:": module "${mod}" declares only its own`);
		if (typeof spec?.description !== "string" || !spec.description.trim())
			throw fail(`permission ${name} has no description`);
		if (!ROLES.includes(spec.role))
			throw fail(`permission ${name}: role ${JSON.stringify(spec.role)} is not one of ${ROLES.join(", ")}`);
	}
	if (m.dependsOn !== undefined && (!Array.isArray(m.dependsOn) || m.dependsOn.some(d => !NAME.test(d))))
		throw fail("dependsOn must be a list of module names");
	for (const [key, s] of Object.entries(m.settings ?? {})) {
		if (typeof s?.env !== "string" || !ENV_NAME.test(s.env))
			throw fail(`setting ${key}: env ${JSON.stringify(s?.env)} is not a variable name like AI_LOG_BATCH_MS`);
		if (typeof s.description !== "string" || !s.description.trim())
			throw fail(`setting ${s.env} has no description`);
		if (typeof s.parse !== "function") throw fail(`setting ${s.env} was not made with setting.int/string/custom`);
	}
	for (const k of Object.keys(m.container?.environment ?? {}))
		if (!/^[A-Z][A-Z0-9_]*$/.test(k))
			throw fail(`container.environment: "${k}" is not an environment variable name`);
	if (m.routes !== undefined && (typeof m.routes !== "string" || !/^[\w-]+(\.[\w-]+)*$/.test(m.routes)))
		throw fail('routes must name a file in the module\'s folder, without its extension ("<module>.routes")');
	if (m.routes !== undefined && ![".ts", ".js"].some(ext => fs.existsSync(path.join(dir, mod, m.routes + ext))))
		throw fail(`routes: ${m.routes}.ts does not exist in the module's folder`);
	return m as ModuleManifest;
}

const cache = new Map<string, ModuleManifest[]>();

// Every module's manifest in `dir`, read once per process. Two modules reading one channel as the same group would
// take each other's events, so that is refused.
export function loadManifests(dir: string): ModuleManifest[] {
	const key = path.resolve(dir);
	const cached = cache.get(key);
	if (cached) return cached;
	const manifests = expandConsumesAll(moduleNames(key).map(mod => readManifest(key, mod)));
	const published = channelsOf(manifests);
	const owner = new Map<string, string>();
	for (const m of manifests)
		for (const { channel, group } of m.consumes) {
			if (!published.includes(channel)) {
				const known = published.length ? published.join(", ") : "none";
				throw new ManifestError(m.name, `consumes ${channel}, which no module publishes (published: ${known})`);
			}
			const id = `${channel} as group "${group}"`;
			const other = owner.get(id);
			if (other && other !== m.name)
				throw new ManifestError(m.name, `${id} is already consumed by module "${other}"`);
			owner.set(id, m.name);
		}
	try {
		derivePermissionTable(manifests);
	} catch (err) {
		throw new ManifestError(key, (err as Error).message);
	}
	cache.set(key, manifests);
	return manifests;
}

// The channels that exist: the ones the modules publish (their event types: services/<module>/<module>.events.ts).
export function channelsOf(manifests: Pick<ModuleManifest, "publishes">[]): ChannelName[] {
	return [...new Set(manifests.flatMap(m => m.publishes))].sort();
}

// `consumesAll` becomes one `consumes` entry per channel published by the other modules (never its own: a notifier
// would otherwise read what it writes). Entries it lists itself stay.
export function expandConsumesAll(manifests: ModuleManifest[]): ModuleManifest[] {
	const published = channelsOf(manifests);
	return manifests.map(m => {
		if (!m.consumesAll) return m;
		const group = m.consumesAll.group;
		const own = new Set(m.publishes);
		const extra = published
			.filter(channel => !own.has(channel))
			.filter(channel => !m.consumes.some(c => c.channel === channel && c.group === group))
			.map(channel => ({ channel, group }));
		return { ...m, consumes: [...m.consumes, ...extra] };
	});
}

// The channels a consumer group of the module reads: what a service's `channels: { "*": … }` stands for.
export function channelsConsumedBy(manifests: ModuleManifest[], group: string): ChannelName[] {
	return manifests.flatMap(m => m.consumes.filter(c => c.group === group).map(c => c.channel)).sort();
}

// Every consumer group any module declares for the channel.
export function consumerGroupsOf(manifests: ModuleManifest[], channel: string): string[] {
	const groups = manifests.flatMap(m => m.consumes.filter(c => c.channel === channel).map(c => c.group));
	return [...new Set(groups)];
}

// The manifest of the module a service file belongs to: its folder, directly under `dir`. A service loaded from
// anywhere else has no module any producer can read.
export function manifestOfServiceFile(dir: string, file: string | undefined): ModuleManifest | undefined {
	if (!file) return undefined;
	const folder = path.dirname(path.resolve(file));
	if (path.dirname(folder) !== path.resolve(dir)) return undefined;
	return loadManifests(dir).find(m => m.name === path.basename(folder));
}

// The modules in an order where each comes after every module it depends on (alphabetical where free to choose, so
// every process gets the same order). A dependency on a module that does not exist, or a cycle, is refused.
export function dependencyOrder<M extends Pick<ModuleManifest, "name" | "dependsOn">>(manifests: M[]): M[] {
	const byName = new Map(manifests.map(m => [m.name, m]));
	for (const m of manifests)
		for (const dep of m.dependsOn ?? [])
			if (!byName.has(dep)) {
				const known = [...byName.keys()].join(", ");
				throw new ManifestError(m.name, `dependsOn names unknown module "${dep}" (known: ${known})`);
			}
	const order: M[] = [];
	const state = new Map<string, "visiting" | "done">();
	const visit = (m: M, path: string[]) => {
		if (state.get(m.name) === "done") return;
		if (state.get(m.name) === "visiting") {
			const cycle = [...path.slice(path.indexOf(m.name)), m.name].join(" -> ");
			throw new ManifestError(m.name, `dependsOn forms a cycle: ${cycle}`);
		}
		state.set(m.name, "visiting");
		for (const dep of [...(m.dependsOn ?? [])].sort()) visit(byName.get(dep)!, [...path, m.name]);
		state.set(m.name, "done");
		order.push(m);
	};
	for (const m of [...manifests].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) visit(m, []);
	return order;
}
