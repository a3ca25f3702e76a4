// A real gateway in this process (moleculer-web on a free port, socket.io bridge) with the auth module, for tests of
// what a client sees; plus HTTP and socket helpers and a logger that keeps every line as the console would print it.
import fs from "fs";
import util from "util";
import { BrokerOptions, ServiceBroker } from "moleculer";
import { io, Socket } from "socket.io-client";
import { createTestBroker } from "./broker";
import { SafeConsoleLogger } from "../../lib/log-safe";

// Every service of the auth module, as its folder holds them.
export const AUTH_FILES = fs
	.readdirSync("services/auth")
	.filter(f => f.endsWith(".service.ts"))
	.map(f => `services/auth/${f}`);
export const GATEWAY_FILE = "services/gateway/gateway.service.ts";

export interface TestGateway {
	broker: ServiceBroker;
	port: number;
	lines: string[];
	stop: () => Promise<void>;
}

export async function startGateway(
	env: Record<string, string>,
	files: string[] = [],
	extra: BrokerOptions = {}
): Promise<TestGateway> {
	// The platform's own logger at info level; what it prints to the console is kept in `lines` instead.
	const lines: string[] = [];
	const spies = (["log", "info", "warn", "error"] as const).map(m =>
		jest.spyOn(console, m).mockImplementation((...args: unknown[]) => void lines.push(util.format(...args)))
	);
	const logger = new SafeConsoleLogger({
		level: "info",
		formatter: "short",
		colors: false,
		write: line => void lines.push(line.trimEnd())
	});
	const t = await createTestBroker(
		{ PORT: "0", HOST: "127.0.0.1", ...env },
		[...AUTH_FILES, ...files, GATEWAY_FILE],
		{ logger, ...extra }
	);
	const gateway: any = t.broker.getLocalService("gateway");
	return {
		broker: t.broker,
		port: gateway.server.address().port,
		lines,
		async stop() {
			await t.stop();
			for (const spy of spies) spy.mockRestore();
		}
	};
}

export type Res = { status: number; body: any; text: string; headers: Headers };

export async function http(
	port: number,
	method: string,
	path: string,
	opts: {
		token?: string;
		org?: string;
		body?: unknown;
		raw?: string | Uint8Array;
		headers?: Record<string, string>;
	} = {}
): Promise<Res> {
	const headers: Record<string, string> = {};
	if (opts.token) headers.authorization = `Bearer ${opts.token}`;
	if (opts.org) headers["x-organization-id"] = opts.org;
	let body: string | Uint8Array | undefined;
	if (opts.raw !== undefined) body = opts.raw;
	else if (opts.body !== undefined) body = JSON.stringify(opts.body);
	if (body !== undefined) headers["content-type"] = "application/json";
	Object.assign(headers, opts.headers);
	const r = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body: body as BodyInit | undefined });
	const text = await r.text();
	let parsed: any = text;
	try {
		parsed = JSON.parse(text);
	} catch {
		/* not JSON */
	}
	return { status: r.status, body: parsed, text, headers: r.headers };
}

export interface Member {
	accessToken: string;
	user: { id: string };
	organization: { id: string };
}

export async function register(port: number, email: string): Promise<Member> {
	const body = { email, password: "correct horse battery", name: email.split("@")[0] };
	const r = await http(port, "POST", "/api/auth/register", { body });
	if (r.status !== 200) throw new Error(`register ${email}: ${r.status} ${r.text}`);
	return r.body;
}

// Resolves with the socket once the bridge said `ready`; rejects with the handshake error (its `data` is the
// platform's error: status, code, message).
export function connect(port: number, auth: Record<string, unknown>): Promise<Socket> {
	return new Promise((resolve, reject) => {
		const opts = { path: "/socket.io", auth, transports: ["websocket"], reconnection: false, forceNew: true };
		const s = io(`http://127.0.0.1:${port}`, opts);
		s.once("ready", () => resolve(s));
		s.once("connect_error", err => {
			s.close();
			reject(err);
		});
	});
}

export const call = (s: Socket, action: string, params?: unknown) =>
	new Promise<any>(resolve => s.emit("call", { action, params }, resolve));
