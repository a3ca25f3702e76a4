// Service identity: a node acts as service X only with X's credential. Knowing TRANSIT_KEY (being a node) lets a
// process join the cluster, not claim a service's name: `ctx.caller` and `ctx.meta` are whatever the sender wrote.
//
// - The operator's root, SERVICE_IDENTITY_KEY, is held by the secrets nodes (the identity authority); a credential
//   is HMAC(root, service name), so one root issues every service's credential and nothing needs storing.
// - Each other node holds only the credentials of the services it runs (SERVICE_CREDENTIALS, printed by
//   `npm run service-credential -- <service>`). Embedded mode is one process, one trust domain: its root is derived
//   from the install's JWT secret and every service there holds its own credential.
// - A call made as a service carries a token in ctx.meta: an HMAC with the service's credential over the service,
//   the target action, the organization, a timestamp and a nonce. It is accepted for that action and organization
//   only, within WINDOW_MS, once per verifying process, so it cannot be replayed for another service, action or
//   organization, nor (on the node that saw it) again.
import crypto from "crypto";

export const IDENTITY_META = "$identity";
export const WINDOW_MS = 60_000;
const SERVICE = /^[a-z][a-z0-9-]*$/;

export class IdentityError extends Error {
	constructor(
		public claimed: string,
		message: string
	) {
		super(message);
		this.name = "IdentityError";
	}
}

export function deriveCredential(root: string, service: string): string {
	if (!SERVICE.test(service)) throw new Error(`"${service}" is not a service name`);
	return crypto.createHmac("sha256", root).update(`coder-ide service credential v1\0${service}`).digest("base64url");
}

// The credential this node holds for `service`: given to it, or issued by the root it holds.
export function credentialOf(
	config: { serviceIdentityKey?: string; serviceCredentials: Map<string, string> },
	service: string
): string | undefined {
	const given = config.serviceCredentials.get(service);
	if (given) return given;
	return config.serviceIdentityKey ? deriveCredential(config.serviceIdentityKey, service) : undefined;
}

// The root of an embedded install: one process, derived from a secret it already keeps (never leaves the process).
export function embeddedRoot(jwtSecret: string): string {
	return crypto.createHmac("sha256", jwtSecret).update("coder-ide service identity root v1").digest("base64url");
}

function mac(credential: string, ...fields: string[]) {
	return crypto.createHmac("sha256", credential).update(fields.join("\0")).digest("base64url");
}

// `extra` is anything else the verifier must see unaltered (a service principal's permissions).
export function signCall(service: string, credential: string, action: string, org = "", extra = "", now = Date.now()) {
	const nonce = crypto.randomBytes(12).toString("base64url");
	const ts = String(now);
	return `${service}.${ts}.${nonce}.${mac(credential, service, action, org, ts, nonce, extra)}`;
}

// The claimed service name of a token, unverified (for refusals' audit entries).
export function claimedService(token: unknown): string {
	const name = typeof token === "string" ? token.split(".")[0] : "";
	return SERVICE.test(name) ? name : "unknown";
}

// Checks tokens with the root; holds the nonces it accepted while they could still be valid.
export class IdentityVerifier {
	// nonce → when it stops mattering (its token expired); pruned as tokens arrive.
	private seen = new Map<string, number>();
	private credentials = new Map<string, Buffer>();

	constructor(private root: string) {}

	// The service the token proves, or IdentityError naming why not.
	verify(token: unknown, action: string, org = "", extra = "", now = Date.now()): string {
		if (typeof token !== "string" || !token) throw new IdentityError("unknown", "no service credential presented");
		const [service, ts, nonce, sig, more] = token.split(".");
		if (!SERVICE.test(service ?? "") || !ts || !nonce || !sig || more !== undefined)
			throw new IdentityError("unknown", "malformed service token");
		if (Math.abs(now - Number(ts)) > WINDOW_MS || !Number.isFinite(Number(ts)))
			throw new IdentityError(service, "service token expired");
		let credential = this.credentials.get(service);
		if (!credential) {
			credential = Buffer.from(deriveCredential(this.root, service));
			this.credentials.set(service, credential);
		}
		const expected = Buffer.from(mac(credential.toString(), service, action, org, ts, nonce, extra));
		const given = Buffer.from(sig);
		if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected))
			throw new IdentityError(service, `token does not prove service ${service} for ${action}`);
		if (this.seen.has(nonce)) throw new IdentityError(service, "service token already used");
		this.forgetExpired(now);
		this.seen.set(nonce, Number(ts) + WINDOW_MS);
		return service;
	}

	// Insertion order is roughly expiry order, so pruning stops at the first nonce still valid.
	private forgetExpired(now: number) {
		for (const [nonce, until] of this.seen) {
			if (until > now - WINDOW_MS) break;
			this.seen.delete(nonce);
		}
	}
}

// One verifier per root in a process, so every check there shares one record of used nonces.
const verifiers = new Map<string, IdentityVerifier>();
export function verifierFor(root: string): IdentityVerifier {
	let v = verifiers.get(root);
	if (!v) verifiers.set(root, (v = new IdentityVerifier(root)));
	return v;
}

// What a service principal's token binds besides service, action and organization: its permissions.
export const permissionsBinding = (permissions: string[]) => [...permissions].sort().join(",");
