// An OAuth-protected MCP server built with the SDK's server-side auth pieces, in the test process on 127.0.0.1: the
// SDK's authorization server router (metadata, dynamic client registration, /authorize with PKCE, /token) over a
// provider kept here, and the MCP endpoint at /mcp behind the SDK's bearer middleware, which answers 401 with the
// protected resource metadata URL. /authorize stands for a user who consents at once: it redirects the browser back
// with a code. Access tokens can be expired and every grant revoked, to see refreshes and re-authorizations.
import http from "http";
import crypto from "crypto";
import type { AddressInfo } from "net";
import { z } from "zod";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { getOAuthProtectedResourceMetadataUrl, mcpAuthRouter } from "@modelcontextprotocol/sdk/server/auth/router.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import { InvalidGrantError, InvalidTokenError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import type { AuthorizationParams, OAuthServerProvider } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { OAuthRegisteredClientsStore } from "@modelcontextprotocol/sdk/server/auth/clients.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import type { OAuthClientInformationFull, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";

// express (which the SDK's auth router is built on) ships no type declarations here: the little used of it, typed.
type Req = http.IncomingMessage & { body?: unknown };
type Res = http.ServerResponse & { status(code: number): Res; redirect(url: string): void };
type Handler = (req: Req, res: Res, next?: () => void) => void;
type App = ((req: http.IncomingMessage, res: http.ServerResponse) => void) & {
	use(h: unknown): void;
	post(path: string, ...h: unknown[]): void;
	all(path: string, h: Handler): void;
};
const express = require("express") as (() => App) & { json(): Handler };

class Provider implements OAuthServerProvider {
	clients = new Map<string, OAuthClientInformationFull>();
	codes = new Map<string, { client: string; params: AuthorizationParams }>();
	access = new Map<string, { client: string; expiresAt: number; resource?: string }>();
	refresh = new Map<string, string>();
	// Every access and refresh token handed out (to look for them where they must not be).
	issued: string[] = [];
	refreshes = 0;

	get clientsStore(): OAuthRegisteredClientsStore {
		return {
			getClient: async id => this.clients.get(id),
			registerClient: async client => {
				const full = client as OAuthClientInformationFull;
				this.clients.set(full.client_id, full);
				return full;
			}
		};
	}

	async authorize(client: OAuthClientInformationFull, params: AuthorizationParams, res: Res) {
		const code = crypto.randomUUID();
		this.codes.set(code, { client: client.client_id, params });
		const target = new URL(params.redirectUri);
		target.searchParams.set("code", code);
		if (params.state !== undefined) target.searchParams.set("state", params.state);
		res.redirect(target.href);
	}

	async challengeForAuthorizationCode(_client: OAuthClientInformationFull, code: string) {
		const c = this.codes.get(code);
		if (!c) throw new InvalidGrantError("unknown code");
		return c.params.codeChallenge;
	}

	async exchangeAuthorizationCode(client: OAuthClientInformationFull, code: string): Promise<OAuthTokens> {
		const c = this.codes.get(code);
		if (!c || c.client !== client.client_id) throw new InvalidGrantError("unknown code");
		this.codes.delete(code);
		return this.grant(client.client_id, c.params.resource?.href);
	}

	async exchangeRefreshToken(client: OAuthClientInformationFull, token: string): Promise<OAuthTokens> {
		if (this.refresh.get(token) !== client.client_id) throw new InvalidGrantError("unknown refresh token");
		this.refresh.delete(token);
		this.refreshes++;
		return this.grant(client.client_id);
	}

	async verifyAccessToken(token: string): Promise<AuthInfo> {
		const t = this.access.get(token);
		if (!t || t.expiresAt < Date.now()) throw new InvalidTokenError("unknown or expired token");
		return { token, clientId: t.client, scopes: [], expiresAt: Math.floor(t.expiresAt / 1000) };
	}

	private grant(client: string, resource?: string): OAuthTokens {
		const accessToken = `at-${crypto.randomBytes(16).toString("hex")}`;
		const refreshToken = `rt-${crypto.randomBytes(16).toString("hex")}`;
		this.access.set(accessToken, { client, expiresAt: Date.now() + 3_600_000, resource });
		this.refresh.set(refreshToken, client);
		this.issued.push(accessToken, refreshToken);
		return { access_token: accessToken, token_type: "bearer", expires_in: 3600, refresh_token: refreshToken };
	}
}

export class TestOAuthMcpServer {
	readonly provider = new Provider();
	url = "";
	calls = 0;
	private server?: http.Server;

	async start(): Promise<string> {
		// The routes need the address, known once listening.
		const app = express();
		this.server = http.createServer((req, res) => app(req, res));
		await new Promise<void>(r => this.server!.listen(0, "127.0.0.1", r));
		const base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
		this.url = `${base}/mcp`;
		app.use(
			mcpAuthRouter({
				provider: this.provider,
				issuerUrl: new URL(base),
				resourceServerUrl: new URL(this.url),
				scopesSupported: ["mcp:tools"]
			})
		);
		const bearer = requireBearerAuth({
			verifier: this.provider,
			resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(new URL(this.url))
		});
		app.post("/mcp", bearer, express.json(), async (req: Req, res: Res) => {
			// Stateless: a server and a transport per request.
			const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
			const server = this.build();
			res.on("close", () => void server.close());
			await server.connect(transport);
			await transport.handleRequest(req, res, req.body);
		});
		app.all("/mcp", (_req, res) => void res.status(405).end());
		return this.url;
	}

	private build(): McpServer {
		const server = new McpServer({ name: "test-oauth", version: "1.0.0" });
		server.registerTool(
			"add",
			{ description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } },
			async ({ a, b }) => {
				this.calls++;
				return { content: [{ type: "text", text: String(a + b) }] };
			}
		);
		return server;
	}

	// Access tokens stop working (as when they expire): the client must refresh.
	expireAccessTokens() {
		this.provider.access.clear();
	}

	// Every grant is withdrawn: only a new authorization helps.
	revokeAll() {
		this.provider.access.clear();
		this.provider.refresh.clear();
	}

	async stop() {
		this.server?.closeAllConnections();
		await new Promise(r => this.server?.close(r));
	}
}
