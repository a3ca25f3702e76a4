// Credentials of the auth module: argon2id passwords, HS256 access tokens, opaque refresh tokens and API keys
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

const b64 = (obj: unknown) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const HEADER = b64({ alg: "HS256", typ: "JWT" });

export function signAccessToken(secret: string, claims: Omit<AccessClaims, "iat" | "exp">, ttlSeconds: number): string {
	const now = Math.floor(Date.now() / 1000);
	const body = `${HEADER}.${b64({ ...claims, iat: now, exp: now + ttlSeconds })}`;
	const sig = crypto.createHmac("sha256", secret).update(body).digest("base64url");
	return `${body}.${sig}`;
}

// Exactly one encoding of a token is accepted: unpadded base64url whose re-encoding gives the same text (so no
// '+', '/', '=', stray or non-zero trailing bits), a pinned header, and claims of the right types and times.
const B64URL = /^[A-Za-z0-9_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Tolerated clock difference between the nodes that sign and verify.
const CLOCK_SKEW_SECONDS = 60;

function decodeSegment(segment: string): Buffer | null {
	if (!B64URL.test(segment)) return null;
	const bytes = Buffer.from(segment, "base64url");
	return bytes.toString("base64url") === segment ? bytes : null;
}

function parseObject(bytes: Buffer): Record<string, unknown> | null {
	try {
		const value = JSON.parse(bytes.toString("utf8"));
		return value && typeof value === "object" && !Array.isArray(value) ? value : null;
	} catch {
		return null;
	}
}

const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isUuid = (v: unknown): v is string => typeof v === "string" && UUID.test(v);

// Returns the claims of a valid, unexpired token signed with `secret`, or null.
export function verifyAccessToken(secret: string, token: string): AccessClaims | null {
	const parts = token.split(".");
	if (parts.length !== 3) return null;
	// The header is pinned byte for byte: one algorithm, no `none`, no key ids, no other fields.
	if (parts[0] !== HEADER) return null;
	const [payload, signature] = [decodeSegment(parts[1]), decodeSegment(parts[2])];
	if (!payload || !signature) return null;
	const expected = crypto.createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest();
	if (signature.length !== expected.length || !crypto.timingSafeEqual(signature, expected)) return null;

	const c = parseObject(payload);
	if (!c || !isUuid(c.sub) || !isUuid(c.sid) || !isTime(c.iat) || !isTime(c.exp)) return null;
	const now = Math.floor(Date.now() / 1000);
	if (c.exp <= now || c.iat > now + CLOCK_SKEW_SECONDS || c.exp <= c.iat) return null;
	if (c.nbf !== undefined && (!isTime(c.nbf) || c.nbf > now + CLOCK_SKEW_SECONDS)) return null;
	return { sub: c.sub, sid: c.sid, iat: c.iat, exp: c.exp };
}
