// Provider hosts under the default policy (AI_ALLOWED_PRIVATE_HOSTS unset), against real PostgreSQL: an "internal"
// service on 127.0.0.1 that would answer anything is never reached, whether the provider names it by address or by
// a name that resolves to it; saving such a provider is a 422 naming base_url, and a row that got past that check
// (written before the policy existed) is refused when the connection is made, with a clear error and nothing of the
// internal service relayed.
import http from "http";
import type { AddressInfo } from "net";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { AI_STACK } from "../helpers/ai";

const FILES = AI_STACK;
const INTERNAL = "INTERNAL-SERVICE-SECRET-51fe";

describeWith(["postgres"])("AI provider host policy (default: internal hosts refused)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	let auth: any;
	let port = 0;
	let connections = 0;
	// An internal service that answers every request, even in OpenAI's shape, with something private.
	const internal = http.createServer((_req, res) => {
		res.writeHead(200, { "content-type": "application/json" });
		res.end(
			JSON.stringify({
				id: "x",
				object: "chat.completion",
				choices: [{ index: 0, message: { role: "assistant", content: INTERNAL }, finish_reason: "stop" }]
			})
		);
	});
	internal.on("connection", () => connections++);
	const call = (action: string, params: any) => broker.call<any, any>(action, params, as(auth));

	beforeAll(async () => {
		await new Promise<void>(r => internal.listen(0, "127.0.0.1", r));
		port = (internal.address() as AddressInfo).port;
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const t = await createTestBroker(
			{ DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "" },
			FILES
		);
		broker = t.broker;
		stop = t.stop;
		const owner: any = await broker.call("auth.register", {
			email: "egress@example.com",
			password: "correct horse battery",
			name: "Owner"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
	}, 60_000);

	afterAll(async () => {
		await stop?.();
		internal.close();
		await sql?.end();
		await db?.drop();
	});

	test.each([
		[
			"an internal address with a query that would swallow the path",
			() => `http://127.0.0.1:${port}/anything?x=`,
			"127.0.0.1 is a loopback address"
		],
		[
			"a name that resolves to loopback",
			() => `http://localhost:${port}/v1`,
			"localhost (127.0.0.1) is a loopback address"
		],
		["IPv4-mapped IPv6", () => `http://[::ffff:127.0.0.1]:${port}/v1`, "is a loopback address"],
		["a decimal IPv4", () => `http://2130706433:${port}/v1`, "127.0.0.1 is a loopback address"],
		["IPv6 loopback", () => `http://[::1]:${port}/v1`, "::1 is a loopback address"],
		["a private range", () => "http://10.0.0.5/v1", "10.0.0.5 is a private network address"],
		[
			"the cloud metadata service",
			() => "http://169.254.169.254/latest/",
			"169.254.169.254 is a cloud metadata address"
		],
		[
			"the metadata service by name",
			() => "http://metadata.google.internal/v1",
			"metadata.google.internal is a cloud metadata address"
		],
		["the unspecified address", () => `http://0.0.0.0:${port}/v1`, "0.0.0.0 is an unspecified address"]
	])("saving a provider on %s is a 422 naming base_url", async (_label, url, says) => {
		const err: any = await call("ai-providers.create", { name: "internal", base_url: url() }).catch(e => e);
		expect(err).toMatchObject({ code: 422, data: [expect.objectContaining({ field: "base_url" })] });
		expect(err.data[0].message).toContain(says);
		expect(err.data[0].message).toContain("AI_ALLOWED_PRIVATE_HOSTS");
		expect(connections).toBe(0);
	});

	test("a provider that got past the save check is refused when connecting: a clear 502, nothing relayed, no connection made", async () => {
		const org = auth.organizationId;
		const deploy = async (name: string, url: string, kind = "chat") => {
			const provider = (
				await sql.query(
					"INSERT INTO ai_providers (organization_id, name, base_url) VALUES ($1, $2, $3) RETURNING id",
					[org, name, url]
				)
			).rows[0];
			await call("ai-deployments.create", { provider_id: provider.id, name, provider_model: "m", kind });
		};
		await deploy("by-address", `http://127.0.0.1:${port}/anything?x=`);
		await deploy("by-name", `http://localhost:${port}/v1`);
		await deploy("embed-by-address", `http://127.0.0.1:${port}/v1`, "embedding");
		const failures = [
			await call("ai.complete", {
				model: "by-address",
				messages: [{ role: "user", content: "hi" }],
				requestId: "ssrf-1"
			}).catch(e => e),
			await call("ai.complete", {
				model: "by-name",
				messages: [{ role: "user", content: "hi" }],
				requestId: "ssrf-2"
			}).catch(e => e),
			await call("ai.stream", { model: "by-name", messages: [{ role: "user", content: "hi" }] }).catch(e => e),
			await call("ai.embed", { model: "embed-by-address", input: "hi" }).catch(e => e)
		];
		for (const err of failures) {
			expect(err).toMatchObject({ code: 502, type: "UPSTREAM_FAILED" });
			expect(err.message).toMatch(
				/^provider host (127\.0\.0\.1|localhost \(127\.0\.0\.1\)|localhost \(::1\)) is a loopback address, which the platform does not connect to/
			);
			expect(JSON.stringify(err)).not.toContain(INTERNAL);
		}
		expect(connections).toBe(0);
		const rows = (
			await sql.query(
				"SELECT request_id, fallback_path, error FROM ai_completion_logs WHERE request_id LIKE 'ssrf-%' ORDER BY request_id"
			)
		).rows;
		expect(rows.map(r => r.fallback_path)).toEqual([
			["by-address@by-address:host_refused"],
			["by-name@by-name:host_refused"]
		]);
		expect(JSON.stringify(rows)).not.toContain(INTERNAL);
	});
});
