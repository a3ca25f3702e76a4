// Ready-to-paste client set-ups for the gateway's OpenAI-compatible /v1 (Connect your IDE), and the exact request
// the playground sent, written as curl, JavaScript and Python ("View code"). Pure functions: tested by what they print.

export interface ModelInfo {
	id: string;
	contextWindow?: number | null;
	tools?: boolean;
	vision?: boolean;
}

// A placeholder that reads as one, for when no new key is on the page (a key is shown only once, when made).
export const KEY_PLACEHOLDER = "YOUR_CODER_IDE_API_KEY";

const json = (v: unknown, indent = 2) => JSON.stringify(v, null, indent);
// A string as a single-quoted shell word.
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
// A JSON value as a Python literal (True/False/None; JSON's string escapes are Python's too).
function pythonLiteral(v: unknown, level = 0): string {
	const pad = (n: number) => "    ".repeat(n);
	if (v === null || v === undefined) return "None";
	if (typeof v === "boolean") return v ? "True" : "False";
	if (typeof v !== "object") return JSON.stringify(v);
	const entries = Array.isArray(v)
		? v.map(x => pythonLiteral(x, level + 1))
		: Object.entries(v as Record<string, unknown>).map(
				([k, x]) => `${JSON.stringify(k)}: ${pythonLiteral(x, level + 1)}`
			);
	const [open, close] = Array.isArray(v) ? ["[", "]"] : ["{", "}"];
	if (!entries.length) return open + close;
	return `${open}\n${entries.map(e => pad(level + 1) + e).join(",\n")}\n${pad(level)}${close}`;
}
// The gateway's origin without /v1 (the Anthropic SDK adds /v1/messages itself).
export const originOf = (baseUrl: string) => baseUrl.replace(/\/v1\/?$/, "");

export function curlSnippet(baseUrl: string, key: string, body: Record<string, unknown>): string {
	return [
		`curl ${body.stream ? "-N " : ""}${baseUrl}/chat/completions \\`,
		`  -H "Authorization: Bearer ${key}" \\`,
		`  -H "Content-Type: application/json" \\`,
		`  -d ${shellQuote(json(body))}`
	].join("\n");
}

export function jsSnippet(baseUrl: string, key: string, body: Record<string, unknown>): string {
	return `import OpenAI from "openai";

const client = new OpenAI({
  baseURL: "${baseUrl}",
  apiKey: process.env.CODER_IDE_API_KEY ?? "${key}",
});

${
	body.stream
		? `const stream = await client.chat.completions.create(${json(body)});
for await (const chunk of stream) {
  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
}`
		: `const completion = await client.chat.completions.create(${json(body)});
console.log(completion.choices[0].message);
console.log("served by", completion.model);`
}`;
}

export function pythonSnippet(baseUrl: string, key: string, body: Record<string, unknown>): string {
	return `import os
from openai import OpenAI

client = OpenAI(
    base_url="${baseUrl}",
    api_key=os.environ.get("CODER_IDE_API_KEY", "${key}"),
)

${
	body.stream
		? `stream = client.chat.completions.create(**${pythonLiteral(body)})
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)`
		: `completion = client.chat.completions.create(**${pythonLiteral(body)})
print(completion.choices[0].message)
print("served by", completion.model)`
}`;
}

export function anthropicSnippet(baseUrl: string, key: string, model: string): string {
	return `import Anthropic from "@anthropic-ai/sdk";

// The SDK adds /v1/messages to the base URL itself.
const client = new Anthropic({
  baseURL: "${originOf(baseUrl)}",
  apiKey: process.env.CODER_IDE_API_KEY ?? "${key}",
});

const message = await client.messages.create({
  model: "${model}",
  max_tokens: 1024,
  messages: [{ role: "user", content: "Hello!" }],
});
console.log(message.content);`;
}

export function continueSnippet(baseUrl: string, key: string, models: ModelInfo[]): string {
	const list = models.length ? models : [{ id: "MODEL_NAME" }];
	const entries = list
		.map(
			m => `  - name: ${m.id}
    provider: openai
    model: ${m.id}
    apiBase: ${baseUrl}
    apiKey: ${key}${m.contextWindow ? `\n    defaultCompletionOptions:\n      contextLength: ${m.contextWindow}` : ""}
    roles: [chat, edit, apply]`
		)
		.join("\n");
	return `# ~/.continue/config.yaml
name: Coder IDE
version: 1.0.0
schema: v1
models:
${entries}`;
}

// GitHub Copilot Chat in VS Code: model picker → Manage models → Add models → Custom endpoint (OpenAI-compatible).
export function copilotSnippet(baseUrl: string, models: ModelInfo[]): string {
	const list = models.length ? models : [{ id: "MODEL_NAME" }];
	return json({
		name: "coder-ide",
		vendor: "customendpoint",
		apiType: "chat-completions",
		models: list.map(m => ({
			id: m.id,
			name: m.id,
			url: baseUrl,
			toolCalling: !!m.tools,
			vision: !!m.vision,
			maxInputTokens: m.contextWindow ?? 128000,
			maxOutputTokens: 4096
		}))
	});
}

// Cursor takes values in its settings rather than a file.
export function cursorSteps(baseUrl: string, key: string, models: ModelInfo[]): string {
	const names = models.map(m => m.id).join(", ") || "MODEL_NAME";
	return `Cursor Settings → Models → API Keys
  OpenAI API Key:           ${key}
  Override OpenAI Base URL: ${baseUrl}
Then "Add model" for each of: ${names}
and press "Verify".`;
}
