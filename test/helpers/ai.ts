// What the AI specs share: the services an in-process AI stack needs, a chat request, and reading an NDJSON stream.
import { ndjson } from "../../lib/ndjson";

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
