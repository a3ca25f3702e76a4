// The platform as an OAuth client of an HTTP MCP server that asks for it: the SDK's OAuthClientProvider over what
// the platform keeps. Tokens, refresh tokens, a dynamically registered client (with its secret) and the PKCE verifier
// are one JSON value in the secrets service (`vault`); nothing of them is kept anywhere else but in this object.
// Two modes: `interactive` (an admin's Authorize, and the callback that ends it) may register a client and start an
// authorization; the pooled connection's provider only uses and refreshes what is stored, and when the server wants
// an authorization nobody gave (or a refresh is refused) it reports `onRequired` and fails the connection.
import type { OAuthClientProvider, OAuthDiscoveryState } from "@modelcontextprotocol/sdk/client/auth.js";
import type {
	OAuthClientInformationMixed,
	OAuthClientMetadata,
	OAuthTokens
} from "@modelcontextprotocol/sdk/shared/auth.js";
import crypto from "crypto";

export interface Stored {
	client?: OAuthClientInformationMixed;
	tokens?: OAuthTokens;
	verifier?: string;
}

export interface OAuthVault {
	read(): Promise<string | undefined>;
	// null removes the stored value
	write(value: string | null): Promise<void>;
}

export interface ProviderOptions {
	redirectUrl: string;
	interactive: boolean;
	vault: OAuthVault;
	// Whether anything may be stored yet (false: never ask the vault, e.g. on every request to a server without OAuth).
	stored: boolean;
	// A client registered by hand (the authorization server offers no dynamic registration).
	configured?: { clientId: string; clientSecret: () => Promise<string | undefined> };
	// Awaited before the connection fails: whoever sees the failure sees the server marked.
	onRequired?: () => Promise<void>;
}

export class NeedsAuthorization extends Error {
	code = "MCP_AUTHORIZATION_REQUIRED";
}

export class McpOAuthProvider implements OAuthClientProvider {
	// Interactive: where the user is sent, and the state that brings them back.
	authorizationUrl?: URL;
	stateValue?: string;
	saveClientInformation?: (info: OAuthClientInformationMixed) => Promise<void>;
	private discovery?: OAuthDiscoveryState;
	private cache?: { raw: string; stored: Stored };

	constructor(private readonly o: ProviderOptions) {
		// Only a client without hand-registered credentials registers itself, and only when a person authorizes.
		if (!o.configured && o.interactive)
			this.saveClientInformation = async info => this.update(s => ({ ...s, client: info }));
	}

	get redirectUrl(): string {
		return this.o.redirectUrl;
	}

	get clientMetadata(): OAuthClientMetadata {
		return {
			client_name: "Coder IDE platform",
			redirect_uris: [this.o.redirectUrl],
			grant_types: ["authorization_code", "refresh_token"],
			response_types: ["code"],
			token_endpoint_auth_method: "client_secret_post"
		};
	}

	state(): string {
		this.stateValue = crypto.randomBytes(32).toString("base64url");
		return this.stateValue;
	}

	async clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
		const c = this.o.configured;
		if (c) {
			const secret = await c.clientSecret();
			return { client_id: c.clientId, ...(secret ? { client_secret: secret } : {}) };
		}
		const client = (await this.load()).client;
		if (!client && !this.o.interactive) throw await this.refusal();
		return client;
	}

	async tokens(): Promise<OAuthTokens | undefined> {
		return (await this.load()).tokens;
	}

	async saveTokens(tokens: OAuthTokens): Promise<void> {
		await this.update(s => ({ client: s.client, tokens }));
	}

	async redirectToAuthorization(url: URL): Promise<void> {
		if (!this.o.interactive) throw await this.refusal();
		this.authorizationUrl = url;
	}

	async saveCodeVerifier(verifier: string): Promise<void> {
		if (this.o.interactive) await this.update(s => ({ ...s, verifier }));
	}

	async codeVerifier(): Promise<string> {
		const v = (await this.load()).verifier;
		if (!v) throw new Error("no authorization of this server is pending (start it again)");
		return v;
	}

	async invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): Promise<void> {
		if (scope === "discovery") return void (this.discovery = undefined);
		await this.update(s => {
			const next = { ...s };
			if (scope === "all" || scope === "client") delete next.client;
			if (scope === "all" || scope === "tokens") delete next.tokens;
			if (scope === "all" || scope === "verifier") delete next.verifier;
			return next;
		});
	}

	// What must never appear in an error or a log line.
	async knownValues(): Promise<string[]> {
		const s = await this.load().catch(() => ({}) as Stored);
		const client = s.client as { client_secret?: string } | undefined;
		return [s.tokens?.access_token, s.tokens?.refresh_token, client?.client_secret, s.verifier].filter(
			(v): v is string => !!v
		);
	}

	saveDiscoveryState(state: OAuthDiscoveryState): void {
		this.discovery = state;
	}

	discoveryState(): OAuthDiscoveryState | undefined {
		return this.discovery;
	}

	// The server asked for an authorization this connection cannot give. A 401 without any OAuth metadata is a
	// credential problem, not an OAuth server.
	private async refusal(): Promise<Error> {
		const d = this.discovery;
		if (!d?.resourceMetadata && !d?.authorizationServerMetadata)
			return new Error("401 Unauthorized (the server offers no OAuth metadata: check its credentials)");
		await this.o.onRequired?.();
		return new NeedsAuthorization("the MCP server needs an OAuth authorization (Authorize, on its page)");
	}

	private async load(): Promise<Stored> {
		if (!this.o.stored) return {};
		const raw = await this.o.vault.read();
		if (!raw) return {};
		if (this.cache?.raw !== raw) this.cache = { raw, stored: JSON.parse(raw) as Stored };
		return this.cache.stored;
	}

	private async update(change: (s: Stored) => Stored): Promise<void> {
		const next = change(await this.load());
		const empty = !next.client && !next.tokens && !next.verifier;
		const raw = empty ? null : JSON.stringify(next);
		await this.o.vault.write(raw);
		this.o.stored = !empty;
		this.cache = raw ? { raw, stored: next } : undefined;
	}
}
