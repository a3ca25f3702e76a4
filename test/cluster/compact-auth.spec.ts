// A user's permissions do not travel between nodes (lib/compact-auth.ts): the packet carries the role, the receiving
// node derives the same list from the manifests before anything reads it, and a service principal's permissions,
// which its token proves, travel as they are. Two platform brokers over real RabbitMQ, with transit encryption.
import { ServiceBroker, type Context } from "moleculer";
import { describeWith, uniqueNamespace } from "../helpers/infra";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { clusterBrokerOptions } from "../helpers/cluster";
import { permissionsFor } from "../../lib/authz";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["rabbitmq"])("auth meta between nodes", () => {
	const NAMESPACE = uniqueNamespace("compact-auth");
	const ID = NAMESPACE.split("-")[1];
	// What arrived on the wire at the serving node, before any middleware of the platform's read it.
	const seen: (AuthInfo | undefined)[] = [];
	let caller: ServiceBroker;
	let server: ServiceBroker;

	const options = (node: string) => clusterBrokerOptions(NAMESPACE, `${node}-${ID}`);

	beforeAll(async () => {
		const base = options("server");
		const spy = {
			name: "WireSpy",
			transitMessageHandler(next: (this: unknown, cmd: string, packet: any) => unknown) {
				return function (this: unknown, cmd: string, packet: any) {
					if (cmd === "REQ") seen.push(structuredClone(packet.payload.meta?.auth));
					return next.call(this, cmd, packet);
				};
			}
		};
		// Listed last, the spy wraps outermost: it sees the packet first.
		server = new ServiceBroker({ ...base, logger: false, middlewares: [...(base.middlewares as any[]), spy] });
		server.createService({
			name: "meta-echo",
			actions: {
				get: {
					visibility: "public",
					handler: (ctx: Context<unknown, { auth?: AuthInfo }>) => ({ auth: ctx.meta.auth })
				}
			}
		});
		caller = new ServiceBroker({ ...options("caller"), logger: false });
		await Promise.all([server.start(), caller.start()]);
		await caller.waitForServices(["meta-echo"], 30_000);
	});

	afterAll(async () => {
		await caller?.stop();
		await server?.stop();
		await deleteRabbitObjects([NAMESPACE]);
	});

	test("a user's permissions are left out of the packet and derived again from the role where it arrives", async () => {
		const auth: AuthInfo = {
			kind: "session",
			userId: "7b0e9b4e-4b8f-4f55-9a43-2f0d1f1c6a01",
			organizationId: "2c3d8a36-0f0e-4f7e-8d5b-3b1f7b8d9e02",
			role: "member",
			permissions: permissionsFor("member")
		};
		seen.length = 0;
		const answer = await caller.call<{ auth: AuthInfo }, object>("meta-echo.get", {}, { meta: { auth } });
		expect(seen).toHaveLength(1);
		expect(seen[0]).toMatchObject({ kind: "session", role: "member", userId: auth.userId });
		expect(seen[0]).not.toHaveProperty("permissions");
		expect(answer.auth.permissions).toEqual(permissionsFor("member"));
		expect(answer.auth.permissions.length).toBeGreaterThan(10);
		// The caller's own context kept its list.
		expect(auth.permissions).toEqual(permissionsFor("member"));
	});

	test("no role (signed in, no organization): an empty list", async () => {
		seen.length = 0;
		const auth = { kind: "session", userId: "7b0e9b4e-4b8f-4f55-9a43-2f0d1f1c6a01", permissions: [] };
		const answer = await caller.call<{ auth: AuthInfo }, object>("meta-echo.get", {}, { meta: { auth } });
		expect(seen[0]).not.toHaveProperty("permissions");
		expect(answer.auth.permissions).toEqual([]);
	});

	test("a service principal's permissions travel as they are", async () => {
		seen.length = 0;
		const auth: AuthInfo = { kind: "service", service: "ai", permissions: ["secrets:read", "usage:write"] };
		const answer = await caller.call<{ auth: AuthInfo }, object>("meta-echo.get", {}, { meta: { auth } });
		expect(seen[0]?.permissions).toEqual(["secrets:read", "usage:write"]);
		expect(answer.auth.permissions).toEqual(["secrets:read", "usage:write"]);
	});
});
