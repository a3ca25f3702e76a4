// A gateway and auth replicas as separate processes on RabbitMQ, Redis and PostgreSQL, a signed-in user with a team,
// and an open-loop stream of authenticated REST reads: what the failover test and bench/failover.ts share.
import { performance } from "perf_hooks";
import { startNode, NodeProcess } from "./process";
import { AMQP_URL, REDIS_URL } from "./infra";
import { freePort } from "./ports";

export type ClusterNode = NodeProcess & { ready: Promise<void> };

export interface AuthCluster {
	base: string;
	gateway: ClusterNode;
	replicas: ClusterNode[];
	// Per replica, the port of its health server (/health, /metrics).
	healthPorts: number[];
	headers: Record<string, string>;
	teamId: string;
	userId: string;
	// Starts one more auth replica (its health port appended to healthPorts) and waits until it is up.
	addReplica: () => Promise<ClusterNode>;
	stop: () => Promise<void>;
}

async function json(url: string, init: RequestInit = {}) {
	const r = await fetch(url, init);
	const body: any = await r.json();
	if (r.status >= 400) throw new Error(`${url}: ${r.status} ${JSON.stringify(body)}`);
	return body;
}

// `env` goes to every node, `gatewayEnv` to the gateway only. Rate limits are lifted: the stream is one user.
export async function startAuthCluster(opts: {
	namespace: string;
	databaseUrl: string;
	replicas?: number;
	env?: Record<string, string>;
	gatewayEnv?: Record<string, string>;
}): Promise<AuthCluster> {
	const id = opts.namespace.split("-").pop();
	const env = {
		TRANSPORTER: AMQP_URL,
		CACHER: REDIS_URL,
		DATABASE_URL: opts.databaseUrl,
		NAMESPACE: opts.namespace,
		RATE_LIMIT_IP_PER_MINUTE: "1000000",
		RATE_LIMIT_USER_PER_MINUTE: "1000000",
		...opts.env
	};
	const nodes: ClusterNode[] = [];
	const stop = async () => {
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
	};
	const healthPorts: number[] = [];
	const replicas: ClusterNode[] = [];
	const startReplica = async () => {
		const port = await freePort();
		const name = `auth-${String.fromCharCode(97 + replicas.length)}-${id}`;
		const node = startNode({ ...env, SERVICES: "auth", NODE_ID: name, HEALTH_PORT: String(port) });
		healthPorts.push(port);
		replicas.push(node);
		nodes.push(node);
		return node;
	};
	const addReplica = async () => {
		const node = await startReplica();
		await node.ready;
		return node;
	};
	try {
		for (let i = 0; i < (opts.replicas ?? 2); i++) await startReplica();
		const port = await freePort();
		const gateway = startNode({
			...env,
			...opts.gatewayEnv,
			SERVICES: "gateway",
			PORT: String(port),
			NODE_ID: `gw-${id}`
		});
		nodes.push(gateway);
		await Promise.all(nodes.map(n => n.ready));

		const base = `http://127.0.0.1:${port}`;
		// moleculer-web registers auto-aliases about a second after start: wait until the route answers.
		for (let i = 0; i < 150; i++) {
			const status = await fetch(`${base}/api/auth/login`, { method: "POST" })
				.then(r => r.status)
				.catch(() => 0);
			if (status === 422) break;
			await new Promise(r => setTimeout(r, 200));
		}
		const reg = await json(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ email: `failover-${id}@example.com`, password: "correct horse battery", name: "F" })
		});
		const headers = { authorization: `Bearer ${reg.accessToken}`, "x-organization-id": reg.organization.id };
		const team = await json(`${base}/api/auth/teams`, {
			method: "POST",
			headers: { ...headers, "content-type": "application/json" },
			body: JSON.stringify({ name: "Replicas" })
		});
		const ids = { teamId: team.id, userId: reg.user.id };
		return { base, gateway, replicas, healthPorts, headers, ...ids, addReplica, stop };
	} catch (err) {
		await stop();
		throw err;
	}
}

// Alternately GET /api/auth/teams/:id and /api/auth/me, each answer checked to be about this user's data.
export function authRead(c: AuthCluster): (i: number) => Promise<void> {
	return async i => {
		const url = i % 2 ? `${c.base}/api/auth/me` : `${c.base}/api/auth/teams/${c.teamId}`;
		const r = await fetch(url, { headers: c.headers });
		const body: any = await r.json().catch(() => undefined);
		if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(body)}`);
		const id = i % 2 ? body?.user?.id : body?.id;
		if (id !== (i % 2 ? c.userId : c.teamId)) throw new Error(`answer about ${id}`);
	};
}

export interface Sample {
	// ms since the stream began
	start: number;
	ms: number;
	error?: string;
}

// Open loop: `rate` requests per second for `durationMs`, each started on schedule whether or not earlier ones have
// answered (a client that waits would hide a stall). `at` runs once, `atMs` into the stream. Bounded: at most
// rate × duration requests, and the returned promise waits for every one to settle.
export async function openLoop(opts: {
	rate: number;
	durationMs: number;
	request: (i: number) => Promise<void>;
	atMs?: number;
	at?: () => Promise<unknown>;
}): Promise<{ samples: Sample[]; atResult?: unknown }> {
	const total = Math.floor((opts.rate * opts.durationMs) / 1000);
	const samples: Sample[] = [];
	const pending: Promise<void>[] = [];
	const t0 = performance.now();
	let side: Promise<unknown> | undefined;
	for (let i = 0; i < total; i++) {
		const due = t0 + (i * 1000) / opts.rate;
		if (!side && opts.at && performance.now() - t0 >= (opts.atMs ?? 0)) side = opts.at();
		const wait = due - performance.now();
		if (wait > 1) await new Promise(r => setTimeout(r, wait));
		const start = performance.now();
		pending.push(
			opts.request(i).then(
				() => void samples.push({ start: start - t0, ms: performance.now() - start }),
				(err: any) => {
					const error = err?.message ?? String(err);
					samples.push({ start: start - t0, ms: performance.now() - start, error });
				}
			)
		);
	}
	await Promise.all(pending);
	const atResult = side ? await side : undefined;
	return { samples: samples.sort((a, b) => a.start - b.start), atResult };
}

export function percentile(values: number[], p: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	if (!sorted.length) return NaN;
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// How many calls of `action` a node's broker has handled, from its Prometheus text (moleculer_request_total).
export async function requestsHandled(healthPort: number, action: string): Promise<number> {
	const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
	let n = 0;
	for (const line of text.split("\n"))
		if (line.startsWith("moleculer_request_total{") && line.includes(`action="${action}"`))
			n += Number(line.split(" ").pop());
	return n;
}
