// A webhook receiver on 127.0.0.1 for plan runs: it records every request (path, Idempotency-Key, time) and applies
// each key's effect once, as a receiver honouring idempotency keys does. A path can be made to fail a number of
// times, to answer with a status, or to hold its requests until the test releases them (a step "in flight").
import http from "http";
import type { AddressInfo } from "net";

export interface Received {
	path: string;
	key: string;
	at: number;
}

export class WebhookReceiver {
	url = "";
	received: Received[] = [];
	// Keys whose effect was applied, in the order they first arrived.
	applied: string[] = [];
	failuresLeft = new Map<string, number>();
	statusOf = new Map<string, number>();
	holding = false;
	held: { req: Received; release: () => void }[] = [];
	private server?: http.Server;

	async start(): Promise<void> {
		this.server = http.createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on("data", c => chunks.push(c));
			req.on("end", () => {
				const path = (req.url ?? "/").split("?")[0];
				const r: Received = { path, key: String(req.headers["idempotency-key"] ?? ""), at: Date.now() };
				this.received.push(r);
				const answer = () => {
					const left = this.failuresLeft.get(path) ?? 0;
					if (left > 0) {
						this.failuresLeft.set(path, left - 1);
						res.writeHead(503).end("try later");
						return;
					}
					const status = this.statusOf.get(path);
					if (status) return void res.writeHead(status).end("no");
					if (!this.applied.includes(r.key)) this.applied.push(r.key);
					res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true, path }));
				};
				if (path.startsWith("/hang")) return; // never answers
				if (this.holding) this.held.push({ req: r, release: answer });
				else answer();
			});
		});
		await new Promise<void>(resolve => this.server!.listen(0, "127.0.0.1", resolve));
		this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
	}

	releaseAll(): void {
		for (const h of this.held.splice(0)) h.release();
	}

	async stop(): Promise<void> {
		this.server?.closeAllConnections();
		await new Promise<void>(resolve => this.server?.close(() => resolve()));
	}
}
