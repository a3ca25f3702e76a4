// GET /api/auth/me is cached: through a gateway and two auth replicas (separate processes on RabbitMQ), a change of
// the user's organizations shows on every read right after it answers, whichever replica serves the read, with the
// shared Redis cache and with a cache per replica.
import { describeWith, createTestDatabase, uniqueNamespace } from "../helpers/infra";
import { startAuthCluster, AuthCluster } from "../helpers/auth-cluster";
import { deleteRabbitObjects } from "../helpers/rabbit";

describeWith(["postgres", "rabbitmq", "redis"])("the cached GET /api/auth/me across auth replicas", () => {
	test.each([
		["the shared Redis cache", {}],
		["a cache per replica", { CACHER: "memory" }]
	])(
		"a rename shows on every read right after it answers, with %s",
		async (_kind, env) => {
			const namespace = uniqueNamespace("mecache");
			const db = await createTestDatabase();
			let cluster: AuthCluster | undefined;
			try {
				cluster = await startAuthCluster({ namespace, databaseUrl: db.url, env });
				const { base, headers } = cluster;
				const org = headers["x-organization-id"];
				const names = async (n: number) => {
					const seen = new Set<string>();
					for (let i = 0; i < n; i++) {
						const r = await fetch(`${base}/api/auth/me`, { headers });
						expect(r.status).toBe(200);
						const body: any = await r.json();
						seen.add(body.organizations.find((o: any) => o.id === org).name);
					}
					return [...seen];
				};
				// Sequential reads alternate between the replicas (one queue, two consumers): both cache the answer.
				expect(await names(20)).toEqual(["F's workspace"]);
				const renamed = await fetch(`${base}/api/auth/organizations/${org}`, {
					method: "PATCH",
					headers: { ...headers, "content-type": "application/json" },
					body: JSON.stringify({ name: "Renamed" })
				});
				expect(renamed.status).toBe(200);
				expect(await names(20)).toEqual(["Renamed"]);
			} finally {
				await cluster?.stop();
				await deleteRabbitObjects([namespace]);
				await db.drop();
			}
		},
		120_000
	);
});
