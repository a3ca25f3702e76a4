// Wording of a notification: the organization's template for its type and channel (notifications_templates), or
// the catalog's default, rendered in the platform's liquid sandbox (lib/templates.ts) with the event's fields, its
// `type` and the coalesced `count`. A field the event lacks renders empty: events of one type vary.
import type { Template } from "liquidjs";
import { LRUCache } from "lru-cache";
import { invalid } from "../../lib/errors";
import { createSandbox } from "../../lib/templates";
import { kindOf, type ChannelKind } from "./catalog";

const engine = createSandbox({ strictVariables: false, renderLimitMs: 100 });
const parsed = new LRUCache<string, Template[]>({ max: 2000 });
const MAX_TITLE = 300;
const MAX_BODY = 20_000;

export interface Wording {
	subject: string;
	body: string;
}

// A syntax error is a 422 naming the field, at save time.
export function parseTemplate(text: string, field: string): Template[] {
	const hit = parsed.get(text);
	if (hit) return hit;
	try {
		const t = engine.parse(text);
		parsed.set(text, t);
		return t;
	} catch (err) {
		throw invalid(field, `does not parse: ${(err as Error).message}`);
	}
}

async function renderText(text: string, vars: Record<string, unknown>, max: number): Promise<string> {
	const out = String(await engine.render(parseTemplate(text, "body"), vars));
	return out.length > max ? out.slice(0, max - 1) + "…" : out;
}

export function variablesOf(event: Record<string, unknown>, count: number): Record<string, unknown> {
	return { ...event, count, event };
}

// The title and body of `event` on `channel`: the organization's own template (`own`), else the catalog's default.
// A template that fails at render time (a limit reached) falls back to the default rather than losing the message.
export async function renderWording(
	event: Record<string, unknown> & { type: string },
	count: number,
	own?: Wording
): Promise<Wording> {
	const kind = kindOf(event.type);
	const vars = variablesOf(event, count);
	const suffix = count > 1 ? ` (${count} times)` : "";
	const render = async (w: Wording) => ({
		subject: (await renderText(w.subject || kind.title, vars, MAX_TITLE)).trim() + suffix,
		body: (await renderText(w.body, vars, MAX_BODY)).trim()
	});
	if (own)
		try {
			return await render(own);
		} catch {
			// the default below
		}
	return render({ subject: kind.title, body: kind.body });
}

export type TemplateLookup = (type: string, channel: ChannelKind) => Promise<Wording | undefined>;
