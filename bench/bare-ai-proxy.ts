// The floor under the AI gateway's overhead: a bare Node HTTP server that forwards a chat request to the upstream
// on the same chat path and transport as the platform (services/ai/chat-upstream.ts), and nothing else — no
// authentication, routing, limits, logs or events. `npm run bench` measures it beside the platform, so the
// platform's own cost is the difference between the two.
import http from "http";
import { directChat } from "../services/ai/chat-upstream";
import { createNodeFetch } from "../services/ai/transport";
import { HostPolicy, parseHostRules } from "../lib/egress";

// The same host policy check as the platform's (the upstream is on loopback: AI_ALLOWED_PRIVATE_HOSTS allows it).
const fetch = createNodeFetch(new HostPolicy(parseHostRules(process.env.AI_ALLOWED_PRIVATE_HOSTS)));
const upstream = directChat(fetch, process.env.UPSTREAM_URL!, { apiKey: process.env.UPSTREAM_KEY ?? "", headers: {} });
const model = process.env.UPSTREAM_MODEL ?? "bench-upstream";

const server = http.createServer((req, res) => {
	const chunks: Buffer[] = [];
	req.on("data", c => chunks.push(c));
	req.on("end", async () => {
		try {
			const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
			const answer = await (await upstream.complete({ ...body, model }, new AbortController().signal)).json();
			res.writeHead(200, { "content-type": "application/json" });
			res.end(JSON.stringify(answer));
		} catch (err: any) {
			res.writeHead(502, { "content-type": "application/json" });
			res.end(JSON.stringify({ error: { message: String(err?.message ?? err) } }));
		}
	});
});
server.listen(Number(process.env.PORT), "127.0.0.1", () =>
	console.log(`bare AI proxy listening on ${process.env.PORT}`)
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
