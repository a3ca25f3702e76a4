// Credentials of the auth module: argon2id passwords, HS256 access tokens (jose), opaque refresh tokens and API keys
// (high-entropy secrets, so a SHA-256 digest is a safe and fast lookup key; only the digest is stored).
import crypto from "crypto";
import argon2 from "argon2";

export const hashPassword = (password: string) => argon2.hash(password, { type: argon2.argon2id });

// Verifying against a fixed hash when the user does not exist keeps "unknown user" as slow as "wrong password".
let dummyHash: Promise<string> | undefined;
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
	if (!hash) {
		dummyHash ??= hashPassword(crypto.randomBytes(16).toString("hex"));
		await argon2.verify(await dummyHash, password).catch(() => false);
		return false;
	}
	return argon2.verify(hash, password).catch(() => false);
}

export const digest = (secret: string) => crypto.createHash("sha256").update(secret).digest("hex");
export const randomToken = (bytes = 32) => crypto.randomBytes(bytes).toString("base64url");

export function newApiKey() {
	const prefix = crypto.randomBytes(4).toString("hex");
	const key = `cide_${prefix}_${randomToken(24)}`;
	return { key, prefix: `cide_${prefix}`, hash: digest(key) };
}

export interface AccessClaims {
	sub: string; // user id
	sid: string; // session = refresh-token family
	iat: number;
	exp: number;
}

// jose signs and verifies (signature, pinned algorithm, typ, crit, claim types); it decodes leniently (whitespace,
// padding) and checks less than we need, so the checks around it stay ours. jose is ES-module only: loaded by
// import() (CommonJS test runs cannot require it). Its WebCrypto HMAC costs more per call than createHmac (measured in
// bench/jwt.ts); auth.resolve runs once per token per gateway cache period and does SQL, so the difference is noise.
// Loaded once: each import() goes through the module loader's hooks again (tsx: about 130 µs).
let jose: Promise<typeof import("jose")> | undefined;
const joseLib = () => (jose ??= import("jose"));
const keys = new Map<string, Promise<CryptoKey>>();
const keyOf = (secret: string) => {
	let key = keys.get(secret);
	if (!key) {
		const raw = new TextEncoder().encode(secret);
		key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
		keys.set(secret, key);
	}
	return key;
};

const HEADER_FIELDS = { alg: "HS256", typ: "JWT" } as const;
const HEADER = Buffer.from(JSON.stringify(HEADER_FIELDS)).toString("base64url");

export async function signAccessToken(
	secret: string,
	claims: Omit<AccessClaims, "iat" | "exp">,
	ttlSeconds: number
): Promise<string> {
	const { SignJWT } = await joseLib();
	const now = Math.floor(Date.now() / 1000);
	return new SignJWT({ sub: claims.sub, sid: claims.sid })
		.setProtectedHeader(HEADER_FIELDS)
		.setIssuedAt(now)
		.setExpirationTime(now + ttlSeconds)
		.sign(await keyOf(secret));
}

// Exactly one encoding of a token is accepted: unpadded base64url whose re-encoding gives the same text (so no
// '+', '/', '=', stray or non-zero trailing bits), a pinned header, and claims of the right types and times.
const B64URL = /^[A-Za-z0-9_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Tolerated clock difference between the nodes that sign and verify (for iat and nbf; exp is strict).
const CLOCK_SKEW_SECONDS = 60;

const canonicalSegment = (segment: string) =>
	B64URL.test(segment) && Buffer.from(segment, "base64url").toString("base64url") === segment;

const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isUuid = (v: unknown): v is string => typeof v === "string" && UUID.test(v);

// Returns the claims of a valid, unexpired token signed with `secret`, or null.
export async function verifyAccessToken(secret: string, token: string): Promise<AccessClaims | null> {
	const parts = token.split(".");
	if (parts.length !== 3 || !canonicalSegment(parts[1]) || !canonicalSegment(parts[2])) return null;
	// The header is pinned byte for byte: one algorithm, no `none`, no key ids, no other fields.
	if (parts[0] !== HEADER) return null;
	const { jwtVerify } = await joseLib();
	const verified = await jwtVerify(token, await keyOf(secret), {
		algorithms: ["HS256"],
		typ: "JWT",
		requiredClaims: ["sub", "sid", "iat", "exp"],
		clockTolerance: CLOCK_SKEW_SECONDS
	}).catch(() => null);
	if (!verified) return null;

	const c: Record<string, unknown> = verified.payload;
	if (!isUuid(c.sub) || !isUuid(c.sid) || !isTime(c.iat) || !isTime(c.exp)) return null;
	const now = Math.floor(Date.now() / 1000);
	if (c.exp <= now || c.iat > now + CLOCK_SKEW_SECONDS || c.exp <= c.iat) return null;
	if (c.nbf !== undefined && (!isTime(c.nbf) || c.nbf > now + CLOCK_SKEW_SECONDS)) return null;
	return { sub: c.sub, sid: c.sid, iat: c.iat, exp: c.exp };
}
