// HTTP MCP servers are reached only where the host policy allows (lib/egress.ts): the transports' fetch refuses an
// internal address unless the operator allowed it, and the check is on the address connected to (after DNS).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { HostPolicy, parseHostRules } from "../../lib/egress";
import { egressFetch } from "../../lib/egress-fetch";
import { TestMcpHttpServer } from "./http-server";

describe("egress of HTTP MCP transports", () => {
	const server = new TestMcpHttpServer("tok-egress-1");
	beforeAll(() => server.start());
	afterAll(() => server.stop());

	const connect = async (policy: HostPolicy, url: string) => {
		const client = new Client({ name: "t", version: "1" }, { capabilities: {} });
		const transport = new StreamableHTTPClientTransport(new URL(url), {
			fetch: egressFetch(policy),
			requestInit: { headers: { Authorization: "Bearer tok-egress-1" } }
		});
		await client.connect(transport);
		return client;
	};

	test("loopback is refused by default, naming the setting", async () => {
		await expect(
			connect(new HostPolicy([], { variable: "MCP_ALLOWED_PRIVATE_HOSTS" }), `${server.url}/mcp`)
		).rejects.toThrow(/MCP_ALLOWED_PRIVATE_HOSTS/);
	});

	test("a name that resolves to loopback is refused at connect time too", async () => {
		const port = new URL(server.url).port;
		await expect(connect(new HostPolicy([]), `http://localhost:${port}/mcp`)).rejects.toThrow(/does not connect/);
	});

	test("allowed by the operator, it connects and lists tools", async () => {
		const client = await connect(new HostPolicy(parseHostRules("127.0.0.1")), `${server.url}/mcp`);
		const { tools } = await client.listTools();
		expect(tools.map(t => t.name)).toContain("add");
		await client.close();
	});
});
