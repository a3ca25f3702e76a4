// The client pool: one live, initialized MCP client per (organization, server) on this replica, so a warm tool call
// is one request on an open connection. An entry is closed (its stdio process group killed) when it has been idle
// for the idle timeout, when its server changes or is removed, when the pool stops, and when it fails. A stdio
// server whose process dies unexpectedly is reported (onCrash) and started again, a few times in a row at most.
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { HostPolicy } from "../../lib/egress";
import { egressFetch } from "../../lib/egress-fetch";
import { GroupStdioTransport, type StdioSpec } from "./stdio";

export type TransportKind = "stdio" | "http" | "sse";

// Everything needed to connect, secrets resolved. `version` changes whenever the server's row does: an entry made
// from an older version is replaced.
export interface ServerSpec {
	id: string;
	organizationId: string;
	name: string;
	transport: TransportKind;
	version: string;
	stdio?: StdioSpec;
	url?: string;
	headers?: Record<string, string>;
	// An HTTP server's OAuth client (oauth-provider.ts): tokens on each request, refreshed on a 401.
	authProvider?: OAuthClientProvider;
	// Every secret value the spec holds, to redact from errors and logs.
	secrets: string[];
}

export interface PoolHooks {
	onListChanged(spec: ServerSpec, what: "tools" | "resources" | "prompts"): void;
	// A connection that was open ended without the pool closing it (a crashed stdio process, a dropped HTTP session).
	onCrash(spec: ServerSpec, reason: string): void;
}

export interface PoolOptions {
	idleTimeoutMs: number;
	connectTimeoutMs: number;
	hostPolicy: HostPolicy;
	hooks: PoolHooks;
	// How many unexpected ends in a row are restarted at once; after that the next call starts it again.
	maxRestarts?: number;
}

export class Entry {
	client!: Client;
	transport!: Transport;
	inflight = 0;
	lastUsed = Date.now();
	closing = false;
	restarts = 0;
	ready!: Promise<Client>;
	constructor(
		readonly key: string,
		readonly spec: ServerSpec
	) {}

	get pid(): number | undefined {
		return this.transport instanceof GroupStdioTransport ? this.transport.pid : undefined;
	}

	get stderr(): string {
		return this.transport instanceof GroupStdioTransport ? this.transport.stderr : "";
	}
}

// The SDK (and the zod schemas it builds on import) is loaded at the first connection, not when the service file is:
// seconds of start-up on a busy host for every process that never runs an MCP client.
type Sdk = {
	Client: typeof import("@modelcontextprotocol/sdk/client/index.js").Client;
	StreamableHTTPClientTransport: typeof import("@modelcontextprotocol/sdk/client/streamableHttp.js").StreamableHTTPClientTransport;
	SSEClientTransport: typeof import("@modelcontextprotocol/sdk/client/sse.js").SSEClientTransport;
	types: typeof import("@modelcontextprotocol/sdk/types.js");
};
let loaded: Sdk | undefined;
function sdk(): Sdk {
	loaded ??= {
		Client: require("@modelcontextprotocol/sdk/client/index.js").Client,
		StreamableHTTPClientTransport: require("@modelcontextprotocol/sdk/client/streamableHttp.js")
			.StreamableHTTPClientTransport,
		SSEClientTransport: require("@modelcontextprotocol/sdk/client/sse.js").SSEClientTransport,
		types: require("@modelcontextprotocol/sdk/types.js")
	};

	return loaded;
}

const keyOf = (organizationId: string, serverId: string) => `${organizationId}:${serverId}`;
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

export class ClientPool {
	private entries = new Map<string, Entry>();
	private sweeper: NodeJS.Timeout;
	private stopped = false;

	constructor(private readonly o: PoolOptions) {
		this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(o.idleTimeoutMs / 2, 30_000)));
		this.sweeper.unref();
	}

	get size(): number {
		return this.entries.size;
	}

	// Pids of the live stdio processes (each the leader of its group).
	pids(): number[] {
		return [...this.entries.values()].map(e => e.pid).filter((p): p is number => !!p);
	}

	entry(organizationId: string, serverId: string): Entry | undefined {
		return this.entries.get(keyOf(organizationId, serverId));
	}

	// A connected client for `spec` (made now if there is none, or the one there is belongs to an older version).
	async acquire(spec: ServerSpec): Promise<Entry> {
		if (this.stopped) throw new Error("the MCP client pool is stopping");
		const key = keyOf(spec.organizationId, spec.id);
		let e = this.entries.get(key);
		if (e && e.spec.version !== spec.version) {
			void this.closeEntry(e);
			e = undefined;
		}
		if (!e) {
			e = new Entry(key, spec);
			this.entries.set(key, e);
			e.ready = this.connect(e);
			const made = e;
			e.ready.catch(() => {
				if (this.entries.get(key) === made) this.entries.delete(key);
			});
		}
		e.lastUsed = Date.now();
		await e.ready;
		return e;
	}

	private makeTransport(spec: ServerSpec, kind: TransportKind): Transport {
		if (kind === "stdio") return new GroupStdioTransport(spec.stdio!);
		const opts = {
			fetch: egressFetch(this.o.hostPolicy),
			requestInit: { headers: spec.headers ?? {} },
			authProvider: spec.authProvider
		};
		const url = new URL(spec.url!);
		const { StreamableHTTPClientTransport, SSEClientTransport } = sdk();
		return kind === "http" ? new StreamableHTTPClientTransport(url, opts) : new SSEClientTransport(url, opts);
	}

	private async connect(e: Entry): Promise<Client> {
		const spec = e.spec;
		try {
			return await this.connectWith(e, spec.transport);
		} catch (err) {
			// A server that does not speak Streamable HTTP answers its POST with a 4xx: try the older HTTP+SSE.
			if (spec.transport !== "http" || !/\b(400|404|405)\b/.test(String((err as Error).message))) throw err;
			return this.connectWith(e, "sse");
		}
	}

	private async connectWith(e: Entry, kind: TransportKind): Promise<Client> {
		const spec = e.spec;
		const { Client, types } = sdk();
		const client = new Client({ name: "coder-ide-platform", version: "1.0.0" }, { capabilities: {} });
		const transport = this.makeTransport(spec, kind);
		e.client = client;
		e.transport = transport;
		const refresh = (what: "tools" | "resources" | "prompts") => () => this.o.hooks.onListChanged(spec, what);
		client.setNotificationHandler(types.ToolListChangedNotificationSchema, refresh("tools"));
		client.setNotificationHandler(types.ResourceListChangedNotificationSchema, refresh("resources"));
		client.setNotificationHandler(types.PromptListChangedNotificationSchema, refresh("prompts"));
		try {
			await client.connect(transport, { timeout: this.o.connectTimeoutMs });
		} catch (err) {
			await transport.close().catch(() => undefined);
			const tail = e.stderr.trim().split("\n").slice(-3).join(" | ");
			throw Object.assign(new Error(`${(err as Error).message}${tail ? ` (stderr: ${tail})` : ""}`), {
				cause: err
			});
		}
		// Set after connect: the Client installs its own onclose, which we wrap.
		const closed = transport.onclose;
		transport.onclose = () => {
			closed?.call(transport);
			this.ended(e);
		};
		return client;
	}

	// The connection ended. If nobody closed it on purpose, it crashed: report it and start it again.
	private ended(e: Entry) {
		if (this.entries.get(e.key) === e) this.entries.delete(e.key);
		if (e.closing || this.stopped) return;
		const tail = e.stderr.trim().split("\n").slice(-3).join(" | ");
		this.o.hooks.onCrash(e.spec, `the connection ended unexpectedly${tail ? ` (stderr: ${tail})` : ""}`);
		const restarts = e.restarts + 1;
		if (restarts > (this.o.maxRestarts ?? 3)) return;
		void (async () => {
			await sleep(Math.min(100 * 2 ** restarts, 5000));
			if (this.stopped || this.entries.has(e.key)) return;
			const next = await this.acquire(e.spec).catch(() => undefined);
			if (next) next.restarts = restarts;
		})();
	}

	private async closeEntry(e: Entry): Promise<void> {
		e.closing = true;
		if (this.entries.get(e.key) === e) this.entries.delete(e.key);
		await e.ready?.catch(() => undefined);
		await e.client?.close().catch(() => undefined);
		await e.transport?.close().catch(() => undefined);
	}

	async close(organizationId: string, serverId: string): Promise<void> {
		const e = this.entries.get(keyOf(organizationId, serverId));
		if (e) await this.closeEntry(e);
	}

	// Every entry of a server (a changed or removed server, whatever organization: ids are unique).
	async closeServer(serverId: string): Promise<void> {
		await Promise.all([...this.entries.values()].filter(e => e.spec.id === serverId).map(e => this.closeEntry(e)));
	}

	private sweep() {
		const now = Date.now();
		for (const e of this.entries.values())
			if (e.inflight === 0 && now - e.lastUsed >= this.o.idleTimeoutMs) void this.closeEntry(e);
	}

	async closeAll(): Promise<void> {
		await Promise.all([...this.entries.values()].map(e => this.closeEntry(e)));
	}

	async stop(): Promise<void> {
		this.stopped = true;
		clearInterval(this.sweeper);
		await this.closeAll();
	}
}
