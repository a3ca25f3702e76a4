// Service identity without infrastructure: what a token proves, and what it does not.
import { loadConfig } from "../../lib/config";
import { credentialOf, deriveCredential, IdentityVerifier, signCall, WINDOW_MS } from "../../lib/service-identity";

const ROOT = "operator-root-key-0123456789abcdef0123";
const ORG = "7d1f6c3e-2b5a-4c1e-9f0a-1b2c3d4e5f60";
const cred = (service: string, root = ROOT) => deriveCredential(root, service);

describe("service identity tokens", () => {
	test("a token made with a service's credential proves that service for its action and organization", () => {
		const v = new IdentityVerifier(ROOT);
		expect(v.verify(signCall("ai", cred("ai"), "secrets.resolve", ORG, "x"), "secrets.resolve", ORG, "x")).toBe(
			"ai"
		);
	});

	test.each([
		["another action", () => signCall("ai", cred("ai"), "secrets.reveal", ORG), "does not prove"],
		["another organization", () => signCall("ai", cred("ai"), "secrets.resolve", "other-org"), "does not prove"],
		["another bound secret", () => signCall("ai", cred("ai"), "secrets.resolve", ORG, "OTHER"), "does not prove"],
		[
			"another service's credential",
			() => signCall("ai", cred("demo-job"), "secrets.resolve", ORG),
			"does not prove"
		],
		[
			"a credential from another root",
			() => signCall("ai", cred("ai", "x".repeat(40)), "secrets.resolve", ORG),
			"does not prove"
		],
		[
			"an old timestamp",
			() => signCall("ai", cred("ai"), "secrets.resolve", ORG, "", Date.now() - WINDOW_MS - 1000),
			"expired"
		],
		["no token", () => undefined, "no service credential"],
		["a forged shape", () => "ai.1.2", "malformed"]
	])("is refused for %s", (_label, make, reason) => {
		const v = new IdentityVerifier(ROOT);
		expect(() => v.verify(make(), "secrets.resolve", ORG, "")).toThrow(reason);
	});

	test("a token is accepted once", () => {
		const v = new IdentityVerifier(ROOT);
		const token = signCall("ai", cred("ai"), "secrets.resolve", ORG);
		v.verify(token, "secrets.resolve", ORG);
		expect(() => v.verify(token, "secrets.resolve", ORG)).toThrow("already used");
	});
});

describe("service identity configuration", () => {
	const base = { TRANSPORTER: "amqp://127.0.0.1", TRANSIT_KEY: "t".repeat(32), JWT_SECRET: "j".repeat(32) };

	test("a node holds the credentials it is given, or those its root issues", () => {
		const given = loadConfig({ ...base, SERVICE_CREDENTIALS: `ai:${cred("ai")}` });
		expect(credentialOf(given, "ai")).toBe(cred("ai"));
		expect(credentialOf(given, "demo-job")).toBeUndefined();
		expect(credentialOf(loadConfig({ ...base, SERVICE_IDENTITY_KEY: ROOT }), "demo-job")).toBe(cred("demo-job"));
		// TRANSIT_KEY alone gives no credential at all.
		expect(credentialOf(loadConfig(base), "ai")).toBeUndefined();
	});

	test("bad values are refused naming the variable, without echoing a credential", () => {
		expect(() => loadConfig({ ...base, SERVICE_IDENTITY_KEY: "short" })).toThrow(
			"SERVICE_IDENTITY_KEY: must be at least 32"
		);
		expect(() => loadConfig({ ...base, SERVICE_CREDENTIALS: "ai:tooShortCredential" })).toThrow(
			/SERVICE_CREDENTIALS: "ai:…" is not/
		);
		const bare = cred("ai");
		expect(() => loadConfig({ ...base, SERVICE_CREDENTIALS: bare })).toThrow(
			expect.objectContaining({ message: expect.not.stringContaining(bare) })
		);
	});

	test("an embedded install derives its own root, so its services hold their credentials", () => {
		const config = loadConfig({ JWT_SECRET: "j".repeat(32) });
		expect(credentialOf(config, "ai")).toHaveLength(43);
	});
});
