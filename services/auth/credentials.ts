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

export function signAccessToken(secret: string, claims: Omit<AccessClaims, "iat" | "exp">, ttlSeconds: number): string {
	const now = Math.floor(Date.now() / 1000);
	const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ ...claims, iat: now, exp: now + ttlSeconds })}`;
	const sig = crypto.createHmac("sha256", secret).update(body).digest("base64url");
	return `${body}.${sig}`;
}

// Returns the claims of a valid, unexpired token signed with `secret`, or null.
export function verifyAccessToken(secret: string, token: string): AccessClaims | null {
	const parts = token.split(".");
	if (parts.length !== 3) return null;
	const expected = crypto.createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest();
	const given = Buffer.from(parts[2], "base64url");
	if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
	try {
		const header = JSON.parse(Buffer.from(parts[0], "base64url").toString());
		if (header.alg !== "HS256") return null;
		const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString()) as AccessClaims;
		if (typeof claims.exp !== "number" || claims.exp <= Math.floor(Date.now() / 1000)) return null;
		return claims;
	} catch {
		return null;
	}
}
