// Outbound connections to hosts that tenants name (AI providers today; MCP servers and webhooks next). An address
// inside the platform's network (loopback, private, link-local, cloud metadata, …) is refused unless the operator
// allowed it. The check runs on the addresses a connection is actually made to, after DNS, so a name that resolves
// (or re-resolves) to an internal address cannot reach it.
import dns from "dns";
import net from "net";

export type AddressClass =
	"metadata" | "unspecified" | "loopback" | "private" | "shared" | "link-local" | "multicast" | "reserved";

const DESCRIPTION: Record<AddressClass, string> = {
	metadata: "a cloud metadata address",
	unspecified: "an unspecified address",
	loopback: "a loopback address",
	private: "a private network address",
	shared: "a carrier-grade NAT address",
	"link-local": "a link-local address",
	multicast: "a multicast address",
	reserved: "a reserved address"
};

// IPv4 ranges by class. Most specific first: the first class that matches is the answer.
const IPV4: [AddressClass, string[]][] = [
	// AWS/GCP/Azure/OpenStack, AWS ECS task metadata, Alibaba Cloud.
	["metadata", ["169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32"]],
	["unspecified", ["0.0.0.0/8"]],
	["loopback", ["127.0.0.0/8"]],
	["private", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]],
	["shared", ["100.64.0.0/10"]],
	["link-local", ["169.254.0.0/16"]],
	["multicast", ["224.0.0.0/4"]],
	["reserved", ["192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"]]
];
const IPV6: [AddressClass, string[]][] = [
	["metadata", ["fd00:ec2::254/128"]],
	["unspecified", ["::/128"]],
	["loopback", ["::1/128"]],
	// Unique local (fc00::/7), deprecated site-local, local-use NAT64.
	["private", ["fc00::/7", "fec0::/10", "64:ff9b:1::/48"]],
	["link-local", ["fe80::/10"]],
	["multicast", ["ff00::/8"]],
	// IPv4-compatible (deprecated), discard-only, documentation.
	["reserved", ["::/96", "100::/64", "2001:db8::/32"]]
];
// Host names that always mean the metadata service, even where they do not resolve.
const METADATA_NAMES = new Set(["metadata.google.internal", "metadata.goog"]);

// One BlockList per class. BlockList matches IPv4-mapped IPv6 (::ffff:a.b.c.d) against IPv4 rules by itself; IPv6
// forms that embed an IPv4 address elsewhere (NAT64 64:ff9b::/96, 6to4 2002::/16) get each IPv4 range added too.
const CLASSES: [AddressClass, net.BlockList][] = (() => {
	const lists = new Map<AddressClass, net.BlockList>();
	const list = (c: AddressClass) => lists.get(c) ?? lists.set(c, new net.BlockList()).get(c)!;
	const split = (r: string): [string, number] => [r.split("/")[0], Number(r.split("/")[1])];
	for (const [c, ranges] of IPV6) for (const r of ranges) list(c).addSubnet(...split(r), "ipv6");
	for (const [c, ranges] of IPV4)
		for (const r of ranges) {
			const [ip, bits] = split(r);
			const [a, b, c2, d] = ip.split(".").map(Number);
			const hex = `${((a << 8) | b).toString(16)}:${((c2 << 8) | d).toString(16)}`;
			list(c).addSubnet(ip, bits, "ipv4");
			list(c).addSubnet(`64:ff9b::${hex}`, 96 + bits, "ipv6");
			list(c).addSubnet(`2002:${hex}::`, 16 + bits, "ipv6");
		}
	const order = [...new Set([...IPV4.map(([c]) => c), ...IPV6.map(([c]) => c)])];
	return order.map(c => [c, list(c)]);
})();

const family = (ip: string) => (net.isIPv6(ip) ? "ipv6" : "ipv4");
const bare = (host: string) => host.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");

// What kind of internal address `ip` is; undefined for a public address.
export function classifyAddress(ip: string): AddressClass | undefined {
	const address = bare(ip);
	if (!net.isIP(address)) throw new TypeError(`not an IP address: ${ip}`);
	for (const [c, list] of CLASSES) if (list.check(address, family(address))) return c;
	return undefined;
}

// An entry of an operator's allow list: "*" (any address but cloud metadata), an address or CIDR range, or a host
// name; addresses and names may carry ":port" to allow that port only.
export type HostRule =
	| { kind: "any" }
	| { kind: "range"; address: string; prefix: number }
	| { kind: "address"; address: string; port?: number }
	| { kind: "name"; name: string; port?: number };

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const normalName = (name: string) => name.toLowerCase().replace(/\.$/, "");

// Parses a comma- or space-separated allow list; throws an Error whose message names the bad entry.
export function parseHostRules(raw: string | undefined): HostRule[] {
	const rules: HostRule[] = [];
	for (const entry of (raw ?? "").split(/[\s,]+/).filter(Boolean)) {
		if (entry === "*") {
			rules.push({ kind: "any" });
			continue;
		}
		const range = /^([^/]+)\/(\d{1,3})$/.exec(entry);
		if (range) {
			const prefix = Number(range[2]);
			const ip = net.isIP(range[1]);
			if (!ip || prefix > (ip === 4 ? 32 : 128)) throw new Error(`"${entry}" is not a valid CIDR range`);
			rules.push({ kind: "range", address: range[1], prefix });
			continue;
		}
		// host, host:port, [v6]:port, or a bare IPv6 address (which has colons of its own).
		const withPort = net.isIPv6(bare(entry)) ? undefined : /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry);
		const host = bare(withPort ? withPort[1] : entry);
		const port = withPort ? Number(withPort[2]) : undefined;
		if (port !== undefined && (port < 1 || port > 65535)) throw new Error(`"${entry}" has an invalid port`);
		if (net.isIP(host)) rules.push({ kind: "address", address: host, port });
		else if (HOST_NAME.test(normalName(host))) rules.push({ kind: "name", name: normalName(host), port });
		else throw new Error(`"${entry}" is not a host name, IP address, CIDR range or *`);
	}
	return rules;
}

export class EgressRefused extends Error {
	readonly code = "EGRESS_REFUSED";
	constructor(
		readonly host: string,
		readonly address: string,
		readonly addressClass: AddressClass,
		hint: string
	) {
		const shown = address && address !== host ? `${host} (${address})` : host;
		super(`host ${shown} is ${DESCRIPTION[addressClass]}, which the platform does not connect to${hint}`);
		this.name = "EgressRefused";
	}
}

type LookupCallback = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;
type Lookup = (host: string, options: dns.LookupAllOptions, callback: LookupCallback) => void;
type Resolved = dns.LookupAddress[];

export interface HostPolicyOptions {
	// The variable an operator sets to allow more, named in refusals.
	variable?: string;
	// DNS resolution (tests inject one that answers differently each time, as a rebinding attacker's DNS would).
	lookup?: Lookup;
}

// Allowed (host, port, address) triples a policy remembers: its rules never change, and classifying an address
// through the BlockLists allocates on every call (an upstream at an IP literal is checked on every request).
const ALLOWED_MAX = 1024;

export class HostPolicy {
	private matchers: { rule: HostRule; list?: net.BlockList }[];
	private resolve: Lookup;
	private hint: string;
	private allowed = new Set<string>();
	private lookups = new Map<number, net.LookupFunction>();

	constructor(rules: HostRule[], options: HostPolicyOptions = {}) {
		this.matchers = rules.map(rule => {
			if (rule.kind !== "range" && rule.kind !== "address") return { rule };
			const list = new net.BlockList();
			if (rule.kind === "range") list.addSubnet(rule.address, rule.prefix, family(rule.address));
			else list.addAddress(rule.address, family(rule.address));
			return { rule, list };
		});
		this.resolve = options.lookup ?? (dns.lookup as unknown as Lookup);
		this.hint = options.variable ? ` (an operator can allow it in ${options.variable})` : "";
	}

	// The refusal for connecting to `address` (what `host` resolved to) on `port`, or undefined when allowed.
	check(host: string, port: number, address: string): EgressRefused | undefined {
		const key = `${host}|${port}|${address}`;
		if (this.allowed.has(key)) return undefined;
		const refused = this.verdict(host, port, address);
		if (!refused) {
			if (this.allowed.size >= ALLOWED_MAX) this.allowed.clear();
			this.allowed.add(key);
		}
		return refused;
	}

	private verdict(host: string, port: number, address: string): EgressRefused | undefined {
		const name = normalName(bare(host));
		const ip = bare(address);
		const c = METADATA_NAMES.has(name) ? "metadata" : classifyAddress(ip);
		if (!c) return undefined;
		const isIp = !!net.isIP(ip);
		for (const { rule, list } of this.matchers) {
			if ("port" in rule && rule.port !== undefined && rule.port !== port) continue;
			// "*" and ranges never cover the metadata service: only an entry naming it exactly does.
			if (rule.kind === "any" && c !== "metadata") return undefined;
			if (rule.kind === "range" && c !== "metadata" && isIp && list!.check(ip, family(ip))) return undefined;
			if (rule.kind === "address" && isIp && list!.check(ip, family(ip))) return undefined;
			if (rule.kind === "name" && rule.name === name) return undefined;
		}
		return new EgressRefused(bare(host), ip, c, this.hint);
	}

	// Every address a name resolves to must be allowed: a resolver answering with one public and one internal
	// address does not get the internal one tried.
	private resolveChecked(host: string, port: number, callback: (err: Error | null, all: Resolved) => void) {
		this.resolve(host, { all: true }, (err, addresses) => {
			if (err) return callback(err, []);
			for (const a of addresses) {
				const refused = this.check(host, port, a.address);
				if (refused) return callback(refused, []);
			}
			callback(null, addresses);
		});
	}

	// A `lookup` for net/http/https connections to `port`: the socket connects only to addresses checked here.
	lookupFor(port: number): net.LookupFunction {
		let lookup = this.lookups.get(port);
		if (!lookup) this.lookups.set(port, (lookup = this.makeLookup(port)));
		return lookup;
	}

	private makeLookup(port: number): net.LookupFunction {
		return ((host: string, options: dns.LookupOptions, callback: (...args: any[]) => void) => {
			this.resolveChecked(host, port, (err, addresses) => {
				if (err) return callback(err);
				const only = options.family === 4 || options.family === 6 ? options.family : undefined;
				const wanted = only ? addresses.filter(a => a.family === only) : addresses;
				const none = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
				if (!wanted.length) return callback(none);
				if (options.all) callback(null, wanted);
				else callback(null, wanted[0].address, wanted[0].family);
			});
		}) as net.LookupFunction;
	}

	// Checks a URL before anything is sent: an IP literal at once (connections to it skip `lookup`), a name by
	// resolving it. A name that does not resolve here is left to the connect-time check.
	async checkUrl(url: URL): Promise<EgressRefused | undefined> {
		const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
		const host = bare(url.hostname);
		if (net.isIP(host)) return this.check(host, port, host);
		if (METADATA_NAMES.has(normalName(host))) return this.check(host, port, "");
		return new Promise(resolve =>
			this.resolveChecked(host, port, err => resolve(err instanceof EgressRefused ? err : undefined))
		);
	}
}
