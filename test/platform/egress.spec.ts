// The outbound host policy (lib/egress.ts) and secret redaction (lib/redact.ts) as pure functions: which addresses
// are internal, what an operator's allow list lets through, and what is cut out of upstream text. No network.
import { classifyAddress, parseHostRules, HostPolicy } from "../../lib/egress";
import { redact, isCredentialHeader } from "../../lib/redact";

describe("outbound host policy", () => {
	test.each([
		["127.0.0.1", "loopback"],
		["127.255.0.9", "loopback"],
		["::1", "loopback"],
		["::ffff:127.0.0.1", "loopback"], // IPv4-mapped IPv6, dotted
		["::ffff:7f00:1", "loopback"], // IPv4-mapped IPv6, hex
		["2002:7f00:1::", "loopback"], // 6to4 around 127.0.0.1
		["0.0.0.0", "unspecified"],
		["::", "unspecified"],
		["10.1.2.3", "private"],
		["172.16.0.1", "private"],
		["192.168.1.1", "private"],
		["::ffff:10.0.0.1", "private"],
		["64:ff9b::a00:1", "private"], // NAT64 around 10.0.0.1
		["fc00::1", "private"], // unique local
		["fd12:3456::1", "private"],
		["100.64.0.1", "shared"], // carrier-grade NAT
		["169.254.1.1", "link-local"],
		["fe80::1", "link-local"],
		["fe80::1%eth0", "link-local"],
		["169.254.169.254", "metadata"],
		["::ffff:169.254.169.254", "metadata"],
		["fd00:ec2::254", "metadata"],
		["224.0.0.1", "multicast"],
		["255.255.255.255", "reserved"],
		["::127.0.0.1", "reserved"] // IPv4-compatible IPv6 (deprecated)
	])("%s is %s", (address, expected) => {
		expect(classifyAddress(address)).toBe(expected);
	});

	test.each([
		"8.8.8.8",
		"1.1.1.1",
		"2606:4700:4700::1111",
		"::ffff:8.8.8.8",
		"64:ff9b::808:808",
		"172.32.0.1",
		"100.128.0.1"
	])("%s is public", address => {
		expect(classifyAddress(address)).toBeUndefined();
	});

	test("the default policy refuses every internal address and names why", () => {
		const policy = new HostPolicy([], { variable: "AI_ALLOWED_PRIVATE_HOSTS" });
		for (const ip of [
			"127.0.0.1",
			"10.0.0.5",
			"169.254.169.254",
			"::1",
			"::ffff:127.0.0.1",
			"fd00:ec2::254",
			"0.0.0.0",
			"100.64.1.1"
		])
			expect(policy.check(ip, 80, ip)).toBeDefined();
		expect(policy.check("8.8.8.8", 443, "8.8.8.8")).toBeUndefined();
		expect(policy.check("10.0.0.5", 80, "10.0.0.5")!.message).toBe(
			"host 10.0.0.5 is a private network address, which the platform does not connect to (an operator can allow it in AI_ALLOWED_PRIVATE_HOSTS)"
		);
		// Metadata host names are refused by name, whatever they resolve to.
		expect(policy.check("metadata.google.internal", 80, "8.8.8.8")?.addressClass).toBe("metadata");
	});

	test("an allow list lets through exactly what it names", () => {
		const policy = new HostPolicy(
			parseHostRules("127.0.0.1, ollama.internal [::1]:8080 10.0.0.0/8 localhost:11434")
		);
		expect(policy.check("127.0.0.1", 5432, "127.0.0.1")).toBeUndefined(); // an address: any port
		expect(policy.check("::ffff:127.0.0.1", 80, "::ffff:127.0.0.1")).toBeUndefined(); // the same address, mapped
		expect(policy.check("127.0.0.2", 80, "127.0.0.2")).toBeDefined();
		expect(policy.check("::1", 8080, "::1")).toBeUndefined();
		expect(policy.check("::1", 8081, "::1")).toBeDefined(); // that port only
		expect(policy.check("10.20.30.40", 80, "10.20.30.40")).toBeUndefined();
		expect(policy.check("ollama.internal", 80, "192.168.7.7")).toBeUndefined(); // a name: whatever it resolves to
		expect(policy.check("other.internal", 80, "192.168.7.7")).toBeDefined();
		expect(policy.check("localhost", 11434, "::1")).toBeUndefined();
		expect(policy.check("localhost", 11435, "::1")).toBeDefined();
	});

	test("a verdict it remembers is for that host, port and address only", () => {
		const policy = new HostPolicy(parseHostRules("127.0.0.1:8080 ollama.internal"));
		for (let i = 0; i < 2; i++) {
			expect(policy.check("127.0.0.1", 8080, "127.0.0.1")).toBeUndefined();
			expect(policy.check("127.0.0.1", 8081, "127.0.0.1")).toBeDefined();
			expect(policy.check("ollama.internal", 80, "10.0.0.1")).toBeUndefined();
			// The same address under another name (a rebinding answer) is judged on its own.
			expect(policy.check("evil.example", 80, "10.0.0.1")).toBeDefined();
		}
		// Each refusal is its own error, with its own stack.
		expect(policy.check("evil.example", 80, "10.0.0.1")).not.toBe(policy.check("evil.example", 80, "10.0.0.1"));
	});

	test("'*' and ranges allow every internal address but the cloud metadata service, which must be named exactly", () => {
		const any = new HostPolicy(parseHostRules("*, 169.254.0.0/16"));
		expect(any.check("192.168.0.1", 80, "192.168.0.1")).toBeUndefined();
		expect(any.check("169.254.1.1", 80, "169.254.1.1")).toBeUndefined();
		expect(any.check("169.254.169.254", 80, "169.254.169.254")?.addressClass).toBe("metadata");
		expect(
			new HostPolicy(parseHostRules("169.254.169.254")).check("169.254.169.254", 80, "169.254.169.254")
		).toBeUndefined();
	});

	test("URLs are checked on the address they name, however it is spelled", async () => {
		const policy = new HostPolicy([]);
		for (const url of [
			"http://127.0.0.1:8080/x?y=",
			"http://2130706433/",
			"http://0x7f.1/",
			"http://[::ffff:127.0.0.1]/",
			"http://[::1]:1/",
			"http://localhost:1/",
			"http://0.0.0.0/",
			"http://metadata.google.internal/computeMetadata/v1/"
		])
			expect(await policy.checkUrl(new URL(url))).toBeDefined();
	});

	test.each(["http://127.0.0.1:11434", "10.0.0.0/33", "a..b", "host:0", "-bad", "::1/129"])(
		"%s is not an allow-list entry",
		entry => {
			expect(() => parseHostRules(entry)).toThrow(/is not|invalid/);
		}
	);
});

describe("secret redaction", () => {
	test("every known secret value goes, also escaped, and key-like strings too", () => {
		const key = "AIzaFakeUpstreamKey0e7d41c9";
		const odd = "p@ss/wörd&=x";
		const text = `Incorrect API key provided: Bearer ${key}; header=${encodeURIComponent(odd)} json=${JSON.stringify({ v: odd + '"' })} other sk-live-abcdef123`;
		const out = redact(text, [key, odd + '"', odd, "", undefined, "ab"]);
		expect(out).not.toContain(key);
		expect(out).not.toContain(encodeURIComponent(odd));
		expect(out).not.toContain("p@ss");
		expect(out).not.toContain("sk-live-abcdef123");
		expect(out).toContain("Incorrect API key provided: Bearer [redacted]");
	});

	test.each([
		["Authorization", true],
		["Proxy-Authorization", true],
		["X-Goog-Api-Key", true],
		["api-key", true],
		["x-api_key", true],
		["apikey", true],
		["X-Auth-Token", true],
		["x-amz-security-token", true],
		["X-Client-Secret", true],
		["Cookie", true],
		["OpenAI-Organization", false],
		["anthropic-version", false],
		["X-Title", false]
	])("%s carries a credential: %s", (name, expected) => {
		expect(isCredentialHeader(name)).toBe(expected);
	});
});
