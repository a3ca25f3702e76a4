// What the AI specs share: the services an in-process AI stack needs, a chat request, and reading an NDJSON stream.
import type OpenAI from "openai";
import { ndjson } from "../../lib/ndjson";
import type { FakeOpenAI } from "./fake-openai";

// auth (for organizations and teams), secrets (provider keys), and every service of the ai module.
export const AI_STACK = [
	"services/auth/auth.service.ts",
	"services/auth/organizations.service.ts",
	"services/auth/teams.service.ts",
	"services/secrets/secrets.service.ts",
	"services/ai/ai.service.ts",
	"services/ai/providers.service.ts",
	"services/ai/deployments.service.ts",
	"services/ai/presets.service.ts",
	"services/ai/routing.service.ts",
	"services/ai/fallbacks.service.ts",
	"services/ai/limits.service.ts"
];

export const ask = (content: string, extra: Record<string, unknown> = {}) => ({
	messages: [{ role: "user", content }],
	...extra
});

// Every value of an NDJSON stream (ai.stream's answer), once it has ended.
export async function drain(stream: NodeJS.ReadableStream): Promise<any[]> {
	const values: any[] = [];
	for await (const value of ndjson(stream as AsyncIterable<Buffer>)) values.push(value);
	return values;
}

// A streamed completion that has sent its first chunk and a plain one the upstream is already answering, both in
// flight when `stop` runs (a SIGTERM): the stop's outcome, the stream's whole text and the plain answer.
export async function inFlightAtStop<T>(
	client: OpenAI,
	up: FakeOpenAI,
	calls: { stream: { model: string; content: string }; plain: { model: string; content: string } },
	stop: () => Promise<T>
) {
	const ask = ({ model, content }: { model: string; content: string }) => ({
		model,
		messages: [{ role: "user" as const, content }]
	});
	const stream = await client.chat.completions.create({
		...ask(calls.stream),
		stream: true,
		stream_options: { include_usage: true }
	});
	const chunks = stream[Symbol.asyncIterator]();
	let text = (await chunks.next()).value?.choices[0]?.delta?.content ?? "";
	const plain = client.chat.completions.create(ask(calls.plain));
	while (!up.requests.some(r => r.body.messages?.[0]?.content === calls.plain.content))
		await new Promise(r => setTimeout(r, 20));
	const stopped = stop();
	const whole = (async () => {
		for (let c = await chunks.next(); !c.done; c = await chunks.next())
			text += c.value.choices[0]?.delta?.content ?? "";
		return text;
	})();
	return { stopped, text: whole, plain };
}
