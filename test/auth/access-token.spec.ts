// Access tokens: one valid encoding per token. Every variant below carries the bytes of a valid signature or is
// signed with the real secret, so a verifier that decodes leniently or checks too little would accept it.
import crypto from "crypto";
import { signAccessToken, verifyAccessToken } from "../../services/auth/credentials";

const SECRET = "test-secret-test-secret-test-secret-0123";
const CLAIMS = { sub: crypto.randomUUID(), sid: crypto.randomUUID() };
const now = () => Math.floor(Date.now() / 1000);
const enc = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const sign = (header: string, payload: string, secret = SECRET) =>
	`${header}.${payload}.${crypto.createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url")}`;
const HEADER = enc({ alg: "HS256", typ: "JWT" });

// The same bytes in another spelling: non-zero unused bits in the last character decode to the same bytes.
function trailingBitsVariant(segment: string): string {
	const bytes = Buffer.from(segment, "base64url");
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (const c of alphabet) {
		const other = segment.slice(0, -1) + c;
		if (other !== segment && Buffer.from(other, "base64url").equals(bytes)) return other;
	}
	throw new Error(`no trailing-bits variant of ${segment}`);
}

// A token whose signature has a character that standard base64 spells differently ('-' or '_'), and whose payload
// has unused bits in its last character, so that every variant below is really another spelling.
async function tokenWithVariants(): Promise<string> {
	for (;;) {
		const t = await signAccessToken(SECRET, CLAIMS, 900);
		const [, p, s] = t.split(".");
		if (/[-_]/.test(s) && p.length % 4 !== 0) return t;
		CLAIMS.sid = crypto.randomUUID();
	}
}

describe("access token verification", () => {
	let token: string, h: string, p: string, s: string;
	beforeAll(async () => {
		token = await tokenWithVariants();
		[h, p, s] = token.split(".");
	});

	test("a token as issued is accepted, with its claims", async () => {
		const claims = await verifyAccessToken(SECRET, token);
		expect(claims).toMatchObject(CLAIMS);
		expect(claims!.exp - claims!.iat).toBe(900);
	});

	test("another encoding of the same signature is refused", async () => {
		const bytes = Buffer.from(s, "base64url");
		const variants: Record<string, string> = {
			"padded base64url": `${s}=`,
			"standard base64": bytes.toString("base64").replace(/=+$/, ""),
			"standard base64, padded": bytes.toString("base64"),
			"trailing bits set": trailingBitsVariant(s),
			"an extra character": `${s}A`,
			"whitespace inside": `${s.slice(0, 10)} ${s.slice(10)}`,
			"a newline at the end": `${s}\n`
		};
		expect(new Set([s, ...Object.values(variants)]).size).toBe(Object.keys(variants).length + 1);
		for (const [name, sig] of Object.entries(variants))
			expect([name, await verifyAccessToken(SECRET, `${h}.${p}.${sig}`)]).toEqual([name, null]);
	});

	test("another encoding of the same header or payload is refused", async () => {
		const variants: Record<string, string> = {
			"padded payload": `${h}.${p}==.${s}`,
			"payload trailing bits": `${h}.${trailingBitsVariant(p)}.${s}`,
			"padded header": `${h}=.${p}.${s}`,
			"header in standard base64, padded": `${Buffer.from(h, "base64url").toString("base64")}=.${p}.${s}`,
			"four segments": `${token}.`,
			"two segments": `${h}.${p}`
		};
		for (const [name, t] of Object.entries(variants))
			expect([name, await verifyAccessToken(SECRET, t)]).toEqual([name, null]);
	});

	test("the algorithm is pinned, even when the rest is signed with the real secret", async () => {
		const payload = enc({ ...CLAIMS, iat: now(), exp: now() + 900 });
		const headers: Record<string, string> = {
			none: enc({ alg: "none", typ: "JWT" }),
			HS512: enc({ alg: "HS512", typ: "JWT" }),
			"reordered fields": enc({ typ: "JWT", alg: "HS256" }),
			"without typ": enc({ alg: "HS256" }),
			"with a key id": enc({ alg: "HS256", typ: "JWT", kid: "x" }),
			"with crit": enc({ alg: "HS256", typ: "JWT", crit: ["exp"] })
		};
		for (const [name, header] of Object.entries(headers))
			expect([name, await verifyAccessToken(SECRET, sign(header, payload))]).toEqual([name, null]);
		expect(await verifyAccessToken(SECRET, `${enc({ alg: "none", typ: "JWT" })}.${payload}.`)).toBeNull();
		// The control: the same payload under the pinned header is accepted.
		expect(await verifyAccessToken(SECRET, sign(HEADER, payload))).toMatchObject(CLAIMS);
	});

	test("exp, nbf and iat are checked, and claims must have their types", async () => {
		const t = now();
		const payloads: Record<string, unknown> = {
			expired: { ...CLAIMS, iat: t - 1000, exp: t - 1 },
			"expires now": { ...CLAIMS, iat: t - 900, exp: t },
			"not yet valid (nbf)": { ...CLAIMS, iat: t, nbf: t + 3600, exp: t + 7200 },
			"nbf not a number": { ...CLAIMS, iat: t, nbf: "0", exp: t + 900 },
			"issued in the future": { ...CLAIMS, iat: t + 3600, exp: t + 7200 },
			"no exp": { ...CLAIMS, iat: t },
			"exp as a string": { ...CLAIMS, iat: t, exp: String(t + 900) },
			"exp fractional": { ...CLAIMS, iat: t, exp: t + 900.5 },
			"no iat": { ...CLAIMS, exp: t + 900 },
			"sub not a user id": { ...CLAIMS, sub: "admin", iat: t, exp: t + 900 },
			"no sid": { sub: CLAIMS.sub, iat: t, exp: t + 900 },
			"an array": [CLAIMS],
			"not JSON": "{sub:",
			null: null
		};
		for (const [name, payload] of Object.entries(payloads))
			expect([name, await verifyAccessToken(SECRET, sign(HEADER, enc(payload)))]).toEqual([name, null]);
		expect(
			await verifyAccessToken(SECRET, sign(HEADER, enc({ ...CLAIMS, iat: t, nbf: t, exp: t + 900 })))
		).toMatchObject(CLAIMS);
	});

	test("a token signed with another secret is refused", async () => {
		expect(await verifyAccessToken(SECRET, await signAccessToken(`${SECRET}-other`, CLAIMS, 900))).toBeNull();
		expect(await verifyAccessToken(`${SECRET}-other`, token)).toBeNull();
	});
});
