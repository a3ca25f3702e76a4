// A cluster of platform nodes as child processes over RabbitMQ (transporter and durable channels), sharing one test
// database and namespace, and an in-test caller broker on the same transporter: what the *.cluster specs set up.
// stop() removes everything the run created (processes, database, the namespace's queues and exchanges, and its Redis
// keys when the cluster was given a CACHER).
import { ServiceBroker } from "moleculer";
import { AMQP_URL, cleanRedis, createTestDatabase, uniqueNamespace } from "./infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY, type NodeProcess } from "./process";
import { deleteRabbitObjects } from "./rabbit";
import { waitUntil } from "./wait";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import type { AuthInfo } from "../../lib/permissions";

export type ClusterNode = NodeProcess & { ready: Promise<void> };

// Broker options of an in-test platform node on the test RabbitMQ, transit-encrypted; `env` adds to them.
export function clusterBrokerOptions(namespace: string, nodeID: string, env: Record<string, string> = {}) {
	return brokerOptions(
		loadConfig({
			TRANSPORTER: AMQP_URL,
			NAMESPACE: namespace,
			NODE_ID: nodeID,
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY: TEST_TRANSIT_KEY,
			LOG_LEVEL: "warn",
			...env
		})
	);
}

export interface TestCluster {
	namespace: string;
	// The namespace's random part, which node ids end with.
	id: string;
	db: Awaited<ReturnType<typeof createTestDatabase>>;
	// What every node gets: transporter, channels, database, namespace, keys (and the cluster's extra env).
	env: Record<string, string>;
	nodes: ClusterNode[];
	// Starts a node running `services` as `<name>-<id>`; await its `ready` to know it is up.
	start: (name: string, services: string, env?: Record<string, string>) => ClusterNode;
	// The in-test broker, started on first use, once the services named are known to it.
	caller: (services: string[]) => Promise<ServiceBroker>;
	// Waits until `action` is served by exactly these nodes, as the caller sees the registry.
	servedBy: (action: string, nodes: ClusterNode[]) => Promise<void>;
	// Registers a user (with their own organization) through auth and returns their resolved identity.
	register: (email: string) => Promise<AuthInfo>;
	stop: () => Promise<void>;
}

export async function startTestCluster(prefix: string, extraEnv: Record<string, string> = {}): Promise<TestCluster> {
	const namespace = uniqueNamespace(prefix);
	const id = namespace.split("-")[1];
	const db = await createTestDatabase();
	const env: Record<string, string> = {
		TRANSPORTER: AMQP_URL,
		CHANNELS_URL: AMQP_URL,
		DATABASE_URL: db.url,
		NAMESPACE: namespace,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY,
		...extraEnv
	};
	const nodes: ClusterNode[] = [];
	let broker: ServiceBroker | undefined;

	const caller = async (services: string[]) => {
		if (!broker) {
			broker = new ServiceBroker({
				...brokerOptions(loadConfig({ ...env, NODE_ID: `caller-${id}`, LOG_LEVEL: "warn" })),
				logger: false
			});
			await broker.start();
		}
		await broker.waitForServices(services, 30_000);
		return broker;
	};

	return {
		namespace,
		id,
		db,
		env,
		nodes,
		start: (name, services, more = {}) => {
			const node = startNode({ ...env, SERVICES: services, NODE_ID: `${name}-${id}`, ...more });
			nodes.push(node);
			return node;
		},
		caller,
		servedBy: async (action, serving) => {
			const want = JSON.stringify(serving.map(n => n.nodeID).sort());
			await waitUntil(
				`${action} served by ${want}`,
				async () =>
					JSON.stringify(
						((broker as any)?.registry.getActionEndpoints(action)?.endpoints ?? [])
							.filter((ep: any) => ep.isAvailable)
							.map((ep: any) => ep.id)
							.sort()
					),
				ids => ids === want
			);
		},
		register: async email => {
			const auth = await caller(["auth"]);
			const reg: any = await auth.call("auth.register", {
				email,
				password: "correct horse battery",
				name: email.split("@")[0]
			});
			return auth.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
		},
		stop: async () => {
			await broker?.stop().catch(() => undefined);
			await Promise.all(nodes.map(n => n.stop("SIGKILL")));
			await deleteRabbitObjects([namespace]).catch(() => undefined);
			if (env.CACHER) await cleanRedis(namespace);
			await db.drop();
		}
	};
}
