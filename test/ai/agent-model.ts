// A scripted OpenAI-compatible model on 127.0.0.1 for agent tests: each chat completion is answered by the script
// of the model it names, given the request (its messages and tools) and the turn number, with text or tool calls
// (several: parallel calls). A turn may wait for `release()` first, so a test can act while a turn is in progress.
import http from "http";
import type { AddressInfo } from "net";

export type Turn = { content: string } | { calls: { name: string; arguments: unknown }[] };
export type Script = (body: any, turn: number) => Turn;

export class ScriptedModel {
	private server = http.createServer((req, res) => void this.handle(req, res));
	private scripts = new Map<string, Script>();
	private turns = new Map<string, number>();
	private held: (() => void)[] = [];
	readonly requests: any[] = [];
	// Models whose turns wait for release(): all of them, or those the predicate picks by their request.
	readonly holding = new Set<string>();
	readonly holdingIf = new Map<string, (body: any) => boolean>();

	async start(): Promise<string> {
		await new Promise<void>(r => this.server.listen(0, "127.0.0.1", r));
		return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
	}

	script(model: string, script: Script) {
		this.scripts.set(model, script);
		this.turns.set(model, 0);
	}

	waiting() {
		return this.held.length;
	}

	release() {
		for (const go of this.held.splice(0)) go();
	}

	async stop() {
		this.release();
		this.server.closeAllConnections();
		await new Promise(r => this.server.close(r));
	}

	private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
		const chunks: Buffer[] = [];
		for await (const c of req) chunks.push(c as Buffer);
		const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
		this.requests.push(body);
		const script = this.scripts.get(body.model);
		if (!script) return this.json(res, 404, { error: { message: "no such model", type: "invalid_request_error" } });
		const turn = (this.turns.get(body.model) ?? 0) + 1;
		this.turns.set(body.model, turn);
		if (this.holding.has(body.model) || this.holdingIf.get(body.model)?.(body))
			await new Promise<void>(r => this.held.push(r));
		if (res.destroyed) return;
		const t = script(body, turn);
		const calls =
			"calls" in t
				? t.calls.map((c, i) => ({
						id: `call_${turn}_${i}`,
						type: "function",
						function: { name: c.name, arguments: JSON.stringify(c.arguments) }
					}))
				: undefined;
		const prompt = promptTokensOf(body);
		const completion = Math.ceil(JSON.stringify(t).length / 4);
		this.json(res, 200, {
			id: `chatcmpl-${turn}`,
			object: "chat.completion",
			created: Math.floor(Date.now() / 1000),
			model: body.model,
			choices: [
				{
					index: 0,
					message: calls
						? { role: "assistant", content: null, tool_calls: calls }
						: { role: "assistant", content: (t as { content: string }).content },
					finish_reason: calls ? "tool_calls" : "stop"
				}
			],
			usage: {
				prompt_tokens: prompt,
				completion_tokens: completion,
				total_tokens: prompt + completion,
				prompt_tokens_details: { cached_tokens: cachedOf(prompt) }
			}
		});
	}

	private json(res: http.ServerResponse, status: number, body: unknown) {
		res.writeHead(status, { "Content-Type": "application/json" });
		res.end(JSON.stringify(body));
	}
}

// What a request's usage says: its prompt tokens, and how many of them were cached (a fixed share, to be summed).
export const promptTokensOf = (body: any) => Math.ceil(JSON.stringify(body.messages).length / 4);
export const cachedOf = (prompt: number) => Math.floor(prompt / 3);

// The text of the tool results the model was sent in its last request.
export const toolResults = (body: any): string[] =>
	body.messages.filter((m: any) => m.role === "tool").map((m: any) => m.content);
