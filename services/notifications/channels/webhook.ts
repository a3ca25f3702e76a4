// Webhook channel: an HTTPS (or HTTP) POST signed per the Standard Webhooks spec (`standardwebhooks`): headers
// webhook-id (the delivery's id, the same on every retry), webhook-timestamp and webhook-signature over
// `id.timestamp.body` with the endpoint's secret (a `whsec_…` key held by the secrets module). Any answer but 2xx
// is a failure the delivery worker retries. Connections go only where the egress policy allows (lib/egress.ts).
import http from "http";
import https from "https";
import net from "net";
import { Webhook } from "standardwebhooks";
import { invalid } from "../../../lib/errors";
import { objectOf, only, scrub, secretName, text } from "./config";
import type { ChannelSender, SecretName } from "./types";

export interface WebhookConfig {
	url: string;
	secret: SecretName;
}

const TIMEOUT_MS = 10_000;
const MAX_ANSWER = 64 * 1024;

function post(url: URL, body: string, headers: Record<string, string>, lookup: net.LookupFunction): Promise<number> {
	return new Promise((resolve, reject) => {
		const req = (url.protocol === "https:" ? https : http).request(
			url,
			{ method: "POST", headers: { ...headers, "content-length": Buffer.byteLength(body) }, lookup },
			res => {
				let read = 0;
				res.on("data", (chunk: Buffer) => {
					read += chunk.length;
					if (read > MAX_ANSWER) res.destroy();
				});
				res.on("end", () => resolve(res.statusCode ?? 0));
				res.on("error", () => resolve(res.statusCode ?? 0));
			}
		);
		req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
		req.once("error", reject);
		req.end(body);
	});
}

export const webhookSender: ChannelSender<WebhookConfig> = {
	kind: "webhook",

	check(config) {
		const o = objectOf(config, "config");
		only(o, ["url", "secret"], "config");
		const raw = text(o, "url", "config", { max: 2000 })!;
		let url: URL;
		try {
			url = new URL(raw);
		} catch {
			throw invalid("config.url", "is not a URL");
		}
		if (url.protocol !== "https:" && url.protocol !== "http:")
			throw invalid("config.url", "must start with https:// or http://");
		if (url.username || url.password) throw invalid("config.url", "must not carry credentials: use the secret");
		return { url: url.href, secret: secretName(o.secret, "config.secret") };
	},

	secretsOf: c => [c.secret],

	async send(config, m, ctx) {
		const key = await ctx.secret(config.secret);
		let signer: Webhook;
		try {
			signer = new Webhook(key);
		} catch {
			throw new Error(`secret ${config.secret.name} is not a Standard Webhooks key (whsec_ and base64)`);
		}
		const timestamp = new Date();
		const body = JSON.stringify({
			type: m.event.type,
			timestamp: timestamp.toISOString(),
			data: { ...m.event, count: m.count, title: m.wording.subject, body: m.wording.body }
		});
		const headers = {
			"content-type": "application/json",
			"user-agent": "coder-ide-notifications",
			"webhook-id": m.deliveryId,
			"webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
			"webhook-signature": signer.sign(m.deliveryId, timestamp, body)
		};
		const url = new URL(config.url);
		const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
		const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
		const refused = net.isIP(literal) ? ctx.policy.check(literal, port, literal) : undefined;
		if (refused) throw refused;
		let status: number;
		try {
			status = await post(url, body, headers, ctx.policy.lookupFor(port));
		} catch (err) {
			throw new Error(scrub(`POST ${url.origin} failed: ${(err as Error).message}`, [key]));
		}
		if (status < 200 || status > 299) throw new Error(`POST ${url.origin}${url.pathname} answered HTTP ${status}`);
	}
};
