// An MCP server over Streamable HTTP (and the older HTTP+SSE at /sse + /messages), built with the SDK in the test
// process on 127.0.0.1. It checks a bearer header, records the cancellations it receives, and can change its tool
// list (a new tool, a changed schema) and say so with notifications/tools/list_changed.
import http from "http";
import crypto from "crypto";
import type { AddressInfo } from "net";
import { z } from "zod";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";

const sleep = (ms: number, signal?: AbortSignal) =>
	new Promise<void>(resolve => {
		const t = setTimeout(resolve, ms);
		signal?.addEventListener("abort", () => {
			clearTimeout(t);
			resolve();
		});
	});

export class TestMcpHttpServer {
	server?: http.Server;
	url = "";
	// Request ids whose call the client cancelled (notifications/cancelled reached the tool's signal).
	cancelled: string[] = [];
	calls = 0;
	// While down, every request is answered 503 (a health check fails).
	down = false;
	private servers = new Set<McpServer>();
	private sessions = new Map<string, StreamableHTTPServerTransport>();
	private sse = new Map<string, SSEServerTransport>();
	private echoVersion = 1;
	private extraTool = false;

	constructor(private readonly token: string) {}

	private build(): McpServer {
		const server = new McpServer(
			{ name: "test-http", version: "1.0.0" },
			{ capabilities: { tools: { listChanged: true } } }
		);
		server.registerTool(
			"add",
			{
				description: "Adds two numbers",
				inputSchema: { a: z.number(), b: z.number() },
				outputSchema: { sum: z.number() }
			},
			async ({ a, b }) => {
				this.calls++;
				return { content: [{ type: "text", text: String(a + b) }], structuredContent: { sum: a + b } };
			}
		);
		server.registerTool(
			"bad-output",
			{
				description: "Declares an output schema and breaks it",
				inputSchema: {},
				outputSchema: { sum: z.number() }
			},
			async () => ({ content: [{ type: "text", text: "x" }], structuredContent: { sum: "not a number" } }) as any
		);
		server.registerTool(
			"slow",
			{ description: "Waits ms milliseconds, or until cancelled", inputSchema: { ms: z.number().int() } },
			async ({ ms }, extra) => {
				await sleep(ms, extra.signal);
				if (extra.signal.aborted) this.cancelled.push(String(extra.requestId));
				return { content: [{ type: "text", text: extra.signal.aborted ? "cancelled" : "done" }] };
			}
		);
		server.registerTool(
			"progress",
			{ description: "Reports progress in steps", inputSchema: { steps: z.number().int().min(1).max(20) } },
			async ({ steps }, extra) => {
				const token = extra._meta?.progressToken;
				for (let i = 1; i <= steps; i++) {
					if (token !== undefined)
						await extra.sendNotification({
							method: "notifications/progress",
							params: { progressToken: token, progress: i, total: steps, message: `step ${i}` }
						});
					await sleep(5);
				}
				return { content: [{ type: "text", text: `${steps} steps` }] };
			}
		);
		server.registerTool(
			"big",
			{ description: "Answers with a text of n bytes", inputSchema: { n: z.number().int().min(1) } },
			async ({ n }) => ({ content: [{ type: "text", text: "x".repeat(n) }] })
		);
		// Echoes the credential it was sent: the platform's log must not keep it.
		server.registerTool(
			"whoami",
			{ description: "Says which credential it got", inputSchema: {} },
			async (_a, extra) => ({
				content: [{ type: "text", text: `token ${String(extra.requestInfo?.headers?.authorization ?? "")}` }]
			})
		);
		const echoSchema: Record<string, z.ZodType> = { message: z.string() };
		if (this.echoVersion === 2) echoSchema.times = z.number().int().optional();
		server.registerTool("echo", { description: "Echoes", inputSchema: echoSchema }, async (args: any) => ({
			content: [{ type: "text", text: String(args.message) }]
		}));
		if (this.extraTool)
			server.registerTool("late", { description: "Added later", inputSchema: {} }, async () => ({
				content: [{ type: "text", text: "late" }]
			}));
		this.servers.add(server);
		return server;
	}

	// Changes the tool list on every open session (a changed echo schema and a new tool) and notifies.
	changeTools() {
		this.echoVersion = 2;
		this.extraTool = true;
		for (const s of this.servers) {
			s.registerTool("late", { description: "Added later", inputSchema: {} }, async () => ({
				content: [{ type: "text", text: "late" }]
			}));
			// RegisteredTool.update sends notifications/tools/list_changed itself.
			(s as any)._registeredTools.echo.update({
				paramsSchema: { message: z.string(), times: z.number().int().optional() }
			});
		}
	}

	async start(): Promise<string> {
		this.server = http.createServer((req, res) => void this.handle(req, res));
		await new Promise<void>(r => this.server!.listen(0, "127.0.0.1", r));
		this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
		return this.url;
	}

	private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
		if (this.down) return void res.writeHead(503).end();
		if (req.headers.authorization !== `Bearer ${this.token}`) {
			res.writeHead(401, { "content-type": "application/json" }).end('{"error":"unauthorized"}');
			return;
		}
		const url = new URL(req.url ?? "/", this.url);
		if (url.pathname === "/sse" && req.method === "GET") {
			const transport = new SSEServerTransport("/messages", res);
			this.sse.set(transport.sessionId, transport);
			res.on("close", () => this.sse.delete(transport.sessionId));
			await this.build().connect(transport);
			return;
		}
		if (url.pathname === "/messages" && req.method === "POST") {
			const t = this.sse.get(url.searchParams.get("sessionId") ?? "");
			if (!t) return void res.writeHead(404).end();
			return void (await t.handlePostMessage(req, res));
		}
		if (url.pathname !== "/mcp") return void res.writeHead(404).end();
		const body = req.method === "POST" ? JSON.parse((await readAll(req)) || "null") : undefined;
		const sid = req.headers["mcp-session-id"] as string | undefined;
		let transport = sid ? this.sessions.get(sid) : undefined;
		if (!transport) {
			if (sid) return void res.writeHead(404).end();
			transport = new StreamableHTTPServerTransport({
				sessionIdGenerator: () => crypto.randomUUID(),
				onsessioninitialized: id => {
					this.sessions.set(id, transport!);
				}
			});
			const made = transport;
			made.onclose = () => made.sessionId && this.sessions.delete(made.sessionId);
			await this.build().connect(made);
		}
		await transport.handleRequest(req, res, body);
	}

	async stop() {
		for (const s of this.servers) await s.close().catch(() => undefined);
		this.server?.closeAllConnections();
		await new Promise(r => this.server?.close(r));
	}
}

function readAll(req: http.IncomingMessage): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		req.on("data", c => chunks.push(c));
		req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		req.on("error", reject);
	});
}
