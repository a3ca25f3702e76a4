// The template language: the platform's liquid sandbox (lib/templates.ts). `{% render 'name' %}` /
// `{% include 'name' %}` name another template the organization sees (its own or a shared one, its `production`
// version), looked up through `PartialLoader` for the render in progress; any other name (a path, `..`, a URL) is
// not found. Undefined names and filters are errors.
import { AsyncLocalStorage } from "async_hooks";
import type { Template } from "liquidjs";
import { LRUCache } from "lru-cache";
import { invalid } from "../../lib/errors";
import { createSandbox } from "../../lib/templates";

export interface ChatMessage {
	role: "system" | "user" | "assistant";
	content: string;
}

// The text of the partial called `name` (its production version's messages), or undefined.
export type PartialLoader = (name: string) => Promise<string | undefined>;

export const PARTIAL_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const MAX_OUTPUT = 1_000_000; // characters of one rendered prompt
const MAX_PARTIALS = 20; // partial look-ups in one render

const current = new AsyncLocalStorage<{ load: PartialLoader; loaded: number }>();

async function readPartial(file: string): Promise<string> {
	const render = current.getStore();
	if (!render || !PARTIAL_NAME.test(file)) throw new Error(`no template named ${JSON.stringify(file)}`);
	if (++render.loaded > MAX_PARTIALS) throw new Error(`more than ${MAX_PARTIALS} partials in one render`);
	const text = await render.load(file);
	if (text === undefined) throw new Error(`no template named ${JSON.stringify(file)}`);
	return text;
}

const noSync = () => {
	throw new Error("templates render asynchronously");
};

export const engine = createSandbox({
	fs: {
		exists: async file => PARTIAL_NAME.test(file),
		existsSync: () => false,
		readFile: readPartial,
		readFileSync: noSync,
		resolve: (_dir, file) => file,
		contains: async () => true,
		containsSync: () => true
	}
});

// Parsed messages per version (versions never change), so a warm render does not parse.
const parsed = new LRUCache<string, Template[][]>({ max: 5000 });

// Parses each message's content; a syntax error is a 422 naming the message.
export function parseMessages(messages: ChatMessage[], field = "messages"): Template[][] {
	return messages.map((m, i) => {
		try {
			return engine.parse(m.content);
		} catch (err) {
			throw invalid(`${field}[${i}].content`, `does not parse: ${(err as Error).message}`);
		}
	});
}

// Every variable the messages read from outside (not assigned, captured or looped over in the template) must be
// declared: a 422 naming the message and the variable, when the version is published rather than at each render.
// Partials are not followed: each is a template of its own, checked when it is published.
export function checkVariablesUsed(messages: ChatMessage[], declared: string[], field = "messages"): void {
	parseMessages(messages, field).forEach((template, i) => {
		for (const name of engine.globalVariablesSync(template, { partials: false }))
			if (!declared.includes(name))
				throw invalid(`${field}[${i}].content`, `uses variable ${name}, which the version does not declare`);
	});
}

// Renders a version's messages with bound variables. A template error (an undefined variable or filter, a missing
// partial, a limit reached) is a 422 naming the message and liquidjs' reason. `versionId` null: a draft, parsed for
// this render only (it may change at every keystroke, so it is not kept).
export async function renderMessages(
	versionId: string | null,
	messages: ChatMessage[],
	variables: Record<string, unknown>,
	load: PartialLoader
): Promise<ChatMessage[]> {
	let templates = versionId === null ? undefined : parsed.get(versionId);
	if (!templates) {
		templates = parseMessages(messages);
		if (versionId !== null) parsed.set(versionId, templates);
	}
	const out: ChatMessage[] = [];
	let length = 0;
	await current.run({ load, loaded: 0 }, async () => {
		for (let i = 0; i < messages.length; i++) {
			let content: string;
			try {
				content = String(await engine.render(templates[i], variables));
			} catch (err) {
				throw invalid(`messages[${i}].content`, `cannot be rendered: ${(err as Error).message}`);
			}
			length += content.length;
			if (length > MAX_OUTPUT)
				throw invalid(`messages[${i}].content`, `renders to more than ${MAX_OUTPUT} characters`);
			out.push({ role: messages[i].role, content });
		}
	});
	return out;
}

// A partial's text: its messages' contents, a blank line between them.
export const partialText = (messages: ChatMessage[]) => messages.map(m => m.content).join("\n\n");
