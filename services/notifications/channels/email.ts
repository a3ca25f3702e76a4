// E-mail channel: the organization's SMTP server through nodemailer, one message per recipient. The password is a
// secret of the secrets module, read at send time. The server's address is checked against the egress policy
// (lib/egress.ts) and nodemailer connects to the checked address, naming the host for TLS.
import net from "net";
import type Nodemailer from "nodemailer";
import { invalid } from "../../../lib/errors";
import { objectOf, only, scrub, secretName, text } from "./config";
import type { ChannelSender, SecretName } from "./types";

export interface EmailConfig {
	host: string;
	port: number;
	secure: boolean; // TLS from the first byte (465); otherwise STARTTLS when the server offers it
	username?: string;
	password?: SecretName;
	from: string;
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;
const TIMEOUT_MS = 15_000;

function resolveChecked(host: string, port: number, lookup: net.LookupFunction): Promise<string> {
	return new Promise((resolve, reject) =>
		lookup(host, { all: false }, (err, address) =>
			err ? reject(err) : resolve(typeof address === "string" ? address : (address as any)[0]?.address)
		)
	);
}

export const emailSender: ChannelSender<EmailConfig> = {
	kind: "email",

	check(config) {
		const o = objectOf(config, "config");
		only(o, ["host", "port", "secure", "username", "password", "from"], "config");
		const host = text(o, "host", "config", { max: 253 })!;
		if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw invalid("config.host", "is not a host name or address");
		const port = o.port ?? 587;
		if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)
			throw invalid("config.port", "must be a port number (1-65535)");
		if (o.secure !== undefined && typeof o.secure !== "boolean")
			throw invalid("config.secure", "must be true or false");
		const from = text(o, "from", "config", { max: 320 })!;
		if (!EMAIL.test(from.replace(/^.*<(.*)>$/, "$1"))) throw invalid("config.from", "is not an e-mail address");
		const username = text(o, "username", "config", { optional: true, max: 320 });
		const password = o.password === undefined ? undefined : secretName(o.password, "config.password");
		if (password && !username) throw invalid("config.username", "is needed with a password");
		return { host, port, secure: !!o.secure, username, password, from };
	},

	secretsOf: c => (c.password ? [c.password] : []),

	async send(config, m, ctx) {
		if (!m.to) throw new Error("an e-mail needs a recipient");
		const password = config.password ? await ctx.secret(config.password) : undefined;
		const bare = config.host.replace(/^\[(.*)\]$/, "$1");
		try {
			const address = net.isIP(bare)
				? bare
				: await resolveChecked(bare, config.port, ctx.policy.lookupFor(config.port));
			const refused = ctx.policy.check(bare, config.port, address);
			if (refused) throw refused;
			// Loaded on the first e-mail: about 2 MB of heap and 12 MB of RSS every notifications node (and the embedded
			// one) otherwise carries from start whether or not any organization sends e-mail.
			const nodemailer = require("nodemailer") as typeof Nodemailer;
			const transport = nodemailer.createTransport({
				host: address,
				port: config.port,
				secure: config.secure,
				auth: config.username ? { user: config.username, pass: password ?? "" } : undefined,
				tls: net.isIP(bare) ? undefined : { servername: bare },
				connectionTimeout: TIMEOUT_MS,
				greetingTimeout: TIMEOUT_MS,
				socketTimeout: TIMEOUT_MS
			});
			try {
				await transport.sendMail({
					from: config.from,
					to: { name: m.to.name, address: m.to.email },
					subject: m.wording.subject,
					text: m.wording.body || m.wording.subject,
					headers: { "X-Notification-Id": m.deliveryId, "X-Event-Type": m.event.type }
				});
			} finally {
				transport.close();
			}
		} catch (err) {
			throw new Error(scrub(`SMTP ${config.host}:${config.port}: ${(err as Error).message}`, [password ?? ""]));
		}
	}
};
