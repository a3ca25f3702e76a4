// Configuration: every environment variable the platform reads, validated in one place: the platform's own here,
// each module's as its manifest declares them (`settings`, lib/settings.ts), read here too.
// Embedded mode (nothing set) runs everything in one process; each *_URL switches one part to real infrastructure.
import fs from "fs";
import path from "path";
import crypto from "crypto";
import { embeddedRoot } from "./service-identity";
import { ConfigError, Env, intVar, readModuleSettings, SettingValues } from "./settings";
import { loadManifests, ModuleManifest, SERVICES_DIR } from "./module";

export { ConfigError };

export interface Config {
	mode: "embedded" | "cluster";
	namespace: string;
	nodeID?: string;
	services: string[] | "all";
	transporterUrl?: string;
	transporterPrefetch: number;
	transitKey?: string;
	cacherUrl?: string; // redis://… or undefined for the in-memory cacher
	cacheEnabled: boolean; // CACHER=none turns action caching off (benchmarks of the database path, debugging)
	cacheTtl: number;
	redisUrl?: string;
	databaseUrl?: string; // postgres://… or undefined for embedded PGlite
	databasePoolSize: number;
	channelsUrl?: string; // amqp://… or undefined for in-process channels
	channelsMaxInFlight: number;
	channelsMaxRetries: number;
	channelsRetryBaseMs: number;
	servicesDir?: string;
	preflightTimeoutMs: number;
	repl: boolean;
	tracing: boolean;
	dataDir: string;
	port: number;
	host: string;
	healthPort?: number;
	metricsPort?: number;
	logLevel: string;
	requestTimeout: number;
	requestRetries: number;
	jwtSecret: string;
	accessTokenTtl: number;
	refreshTokenTtl: number;
	migrate: boolean;
	corsOrigins: string[];
	rateLimitIpPerMinute: number;
	rateLimitUserPerMinute: number;
	bodyLimit: string;
	socketCallsPerSecond: number;
	socketsPerUser: number;
	metricsToken?: string;
	// Service identity (lib/service-identity.ts): the root that issues every service's credential (secrets nodes;
	// embedded: derived), and the credentials of the services this node runs, by service name.
	serviceIdentityKey?: string;
	serviceCredentials: Map<string, string>;
	heapGrowingPercent: number; // V8's old-generation growth after a full collection; 0: V8's own dynamic factor
	// Every module's settings as its manifest declares them, by module name (read them with moduleSettings).
	modules: Record<string, Record<string, unknown>>;
}

function urlVar(env: Env, name: string, protocols: string[]): string | undefined {
	const raw = env[name];
	if (raw == null || raw === "") return undefined;
	let parsed: URL;
	try {
		parsed = new URL(raw);
	} catch {
		throw new ConfigError(name, `is not a valid URL (expected ${protocols.map(p => p + "//…").join(" or ")})`);
	}
	if (!protocols.includes(parsed.protocol))
		throw new ConfigError(name, `must start with ${protocols.join(" or ")}, got "${parsed.protocol}"`);
	return raw;
}

// "ai:<credential>,workflow:<credential>": what `npm run service-credential -- <service>` prints, joined by commas.
function credentialsVar(env: Env, name: string): Map<string, string> {
	const found = new Map<string, string>();
	for (const entry of (env[name] || "")
		.split(",")
		.map(s => s.trim())
		.filter(Boolean)) {
		const m = /^([a-z][a-z0-9-]*):([A-Za-z0-9_-]{43})$/.exec(entry);
		// Never echoes a credential: only the name before the colon.
		const what = entry.includes(":") ? `"${entry.split(":")[0]}:…"` : "an entry without a service name";
		if (!m) throw new ConfigError(name, `${what} is not <service>:<credential> (a 43-character credential)`);
		found.set(m[1], m[2]);
	}
	return found;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"];

export function loadConfig(env: Env = process.env): Config {
	const transporterUrl = urlVar(env, "TRANSPORTER", ["amqp:", "amqps:"]);
	const mode = transporterUrl ? "cluster" : "embedded";
	const dataDir = path.resolve(env.DATA_DIR || "./data");

	let cacherUrl: string | undefined;
	const cacheEnabled = env.CACHER !== "none";
	if (env.CACHER && env.CACHER !== "memory" && cacheEnabled) cacherUrl = urlVar(env, "CACHER", ["redis:", "rediss:"]);

	const logLevel = env.LOG_LEVEL || "info";
	if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}`);

	const servicesRaw = (env.SERVICES || "").trim();
	const services =
		servicesRaw === "" || servicesRaw === "all"
			? "all"
			: servicesRaw
					.split(",")
					.map(s => s.trim())
					.filter(Boolean);
	if (services !== "all")
		for (const s of services)
			if (!/^[a-z][a-z0-9-]*$/.test(s)) throw new ConfigError("SERVICES", `"${s}" is not a module name`);

	const config: Config = {
		mode,
		namespace: env.NAMESPACE || "coder-ide",
		nodeID: env.NODE_ID || undefined,
		services,
		transporterUrl,
		transporterPrefetch: intVar(env, "TRANSPORTER_PREFETCH", 100, 1, 10000),
		transitKey: env.TRANSIT_KEY || undefined,
		cacherUrl,
		cacheEnabled,
		cacheTtl: intVar(env, "CACHE_TTL", 300, 1),
		redisUrl: urlVar(env, "REDIS_URL", ["redis:", "rediss:"]) || cacherUrl,
		databaseUrl: urlVar(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
		databasePoolSize: intVar(env, "DATABASE_POOL_SIZE", 10, 1, 1000),
		channelsUrl: urlVar(env, "CHANNELS_URL", ["amqp:", "amqps:"]),
		channelsMaxInFlight: intVar(env, "CHANNELS_MAX_IN_FLIGHT", 10, 1, 1000),
		channelsMaxRetries: intVar(env, "CHANNELS_MAX_RETRIES", 5, 1, 100),
		channelsRetryBaseMs: intVar(env, "CHANNELS_RETRY_BASE_MS", 200, 1, 60_000),
		servicesDir: env.SERVICES_DIR ? path.resolve(env.SERVICES_DIR) : undefined,
		preflightTimeoutMs: intVar(env, "PREFLIGHT_TIMEOUT_MS", 8000, 100, 600_000),
		repl: env.REPL === "1" || env.REPL === "true",
		tracing: !!env.TRACING,
		dataDir,
		port: intVar(env, "PORT", 3000, 0, 65535),
		host: env.HOST || "127.0.0.1",
		healthPort: env.HEALTH_PORT ? intVar(env, "HEALTH_PORT", 0, 0, 65535) : undefined,
		metricsPort: env.METRICS_PORT ? intVar(env, "METRICS_PORT", 0, 0, 65535) : undefined,
		logLevel,
		requestTimeout: intVar(env, "REQUEST_TIMEOUT", 10000, 100),
		requestRetries: intVar(env, "REQUEST_RETRIES", 5, 0, 20),
		jwtSecret: "",
		accessTokenTtl: intVar(env, "ACCESS_TOKEN_TTL", 900, 10),
		refreshTokenTtl: intVar(env, "REFRESH_TOKEN_TTL", 30 * 24 * 3600, 60),
		migrate: env.MIGRATE !== "false",
		corsOrigins: (env.CORS_ORIGINS || "")
			.split(",")
			.map(s => s.trim())
			.filter(Boolean),
		rateLimitIpPerMinute: intVar(env, "RATE_LIMIT_IP_PER_MINUTE", 600, 1),
		rateLimitUserPerMinute: intVar(env, "RATE_LIMIT_USER_PER_MINUTE", 1200, 1),
		bodyLimit: env.BODY_LIMIT || "1mb",
		socketCallsPerSecond: intVar(env, "SOCKET_CALLS_PER_SECOND", 20, 1),
		socketsPerUser: intVar(env, "SOCKETS_PER_USER", 10, 1, 10_000),
		metricsToken: env.METRICS_TOKEN || undefined,
		serviceIdentityKey: env.SERVICE_IDENTITY_KEY || undefined,
		serviceCredentials: credentialsVar(env, "SERVICE_CREDENTIALS"),
		heapGrowingPercent: intVar(env, "HEAP_GROWING_PERCENT", 0, 0, 300),
		modules: {}
	};
	for (const origin of config.corsOrigins)
		if (origin !== "*" && !/^https?:\/\/[^/]+$/.test(origin))
			throw new ConfigError("CORS_ORIGINS", `"${origin}" is not an origin like https://ide.example.com`);
	if (config.metricsToken && config.metricsToken.length < 32)
		throw new ConfigError("METRICS_TOKEN", "must be at least 32 characters");
	if (!/^\d+(b|kb|mb)$/i.test(config.bodyLimit))
		throw new ConfigError("BODY_LIMIT", `must look like 512kb or 1mb, got "${config.bodyLimit}"`);
	config.jwtSecret = resolveJwtSecret(env, config);
	if (config.serviceIdentityKey && config.serviceIdentityKey.length < 32)
		throw new ConfigError("SERVICE_IDENTITY_KEY", "must be at least 32 characters");
	// One process is one trust domain: its services hold their credentials through a root only it knows.
	if (config.mode === "embedded" && !config.serviceIdentityKey)
		config.serviceIdentityKey = embeddedRoot(config.jwtSecret);
	// Packets between nodes carry secret values (secrets.resolve): a cluster must encrypt them.
	if (config.mode === "cluster" && !config.transitKey)
		throw new ConfigError("TRANSIT_KEY", "is required in cluster mode (32+ characters, the same on every node)");
	if (config.transitKey && config.transitKey.length < 32)
		throw new ConfigError("TRANSIT_KEY", "must be at least 32 characters");
	// Every module's, loaded here or not (as before they moved to the manifests): a bad value stops any node.
	config.modules = readModuleSettings(moduleManifests(config), env);
	return config;
}

// The platform's modules and, with SERVICES_DIR, the modules there.
function moduleManifests(config: Config): ModuleManifest[] {
	const dirs = [...new Set([SERVICES_DIR, config.servicesDir ?? SERVICES_DIR])];
	return dirs.flatMap(dir => loadManifests(dir));
}

// A module's settings, typed from its manifest: `moduleSettings(aiModule).logBatchMs`.
export function moduleSettings<M extends ModuleManifest>(manifest: M): SettingValues<NonNullable<M["settings"]>> {
	const values = getConfig().modules[manifest.name];
	if (!values) throw new Error(`module "${manifest.name}" is not in the services directories this node reads`);
	return values as SettingValues<NonNullable<M["settings"]>>;
}

// Cluster nodes must share one signing secret, so it must be given; an embedded install generates its own once.
function resolveJwtSecret(env: Env, config: Config): string {
	const given = env.JWT_SECRET;
	if (given) {
		if (given.length < 32) throw new ConfigError("JWT_SECRET", "must be at least 32 characters");
		return given;
	}
	if (config.mode === "cluster")
		throw new ConfigError("JWT_SECRET", "is required in cluster mode (TRANSPORTER is set)");
	return readOrCreateKeyFile(config.dataDir, "jwt-secret");
}

export function readOrCreateKeyFile(dataDir: string, name: string): string {
	const file = path.join(dataDir, name);
	if (fs.existsSync(file)) return fs.readFileSync(file, "utf8").trim();
	fs.mkdirSync(dataDir, { recursive: true });
	const secret = crypto.randomBytes(48).toString("base64url");
	fs.writeFileSync(file, secret + "\n", { mode: 0o600, flag: "wx" });
	return secret;
}

let current: Config | undefined;
export function getConfig(): Config {
	if (!current) current = loadConfig();
	return current;
}
export function setConfig(config: Config) {
	current = config;
}
