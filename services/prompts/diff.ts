// The difference between two versions of a template, as structured JSON for a side-by-side view: messages compared
// by position (role, and the content's lines through `diff`), variables by name, model settings by key.
import { lineDiff, type LinePart } from "../../lib/diff";
import type { ChatMessage } from "./render";
import type { VariableDef } from "./variables";

export interface VersionContent {
	number: number;
	messages: ChatMessage[];
	variables: VariableDef[];
	model_settings: Record<string, unknown>;
}

type Change = "added" | "removed" | "changed" | "unchanged";

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function diffVersions(from: VersionContent, to: VersionContent) {
	const messages = Array.from({ length: Math.max(from.messages.length, to.messages.length) }, (_, index) => {
		const a = from.messages[index];
		const b = to.messages[index];
		const change: Change = !a ? "added" : !b ? "removed" : same(a, b) ? "unchanged" : "changed";
		const content: LinePart[] = lineDiff(a?.content ?? "", b?.content ?? "");
		return { index, change, from_role: a?.role ?? null, to_role: b?.role ?? null, content };
	});
	const names = [...new Set([...from.variables.map(v => v.name), ...to.variables.map(v => v.name)])];
	const variables = names.map(name => {
		const a = from.variables.find(v => v.name === name);
		const b = to.variables.find(v => v.name === name);
		const change: Change = !a ? "added" : !b ? "removed" : same(a, b) ? "unchanged" : "changed";
		return { name, change, from: a ?? null, to: b ?? null };
	});
	const keys = [...new Set([...Object.keys(from.model_settings), ...Object.keys(to.model_settings)])].sort();
	const model_settings = keys.map(key => {
		const a = from.model_settings[key];
		const b = to.model_settings[key];
		const change: Change =
			a === undefined ? "added" : b === undefined ? "removed" : same(a, b) ? "unchanged" : "changed";
		return { key, change, from: a ?? null, to: b ?? null };
	});
	const changed = [...messages, ...variables, ...model_settings].some(x => x.change !== "unchanged");
	return { from: from.number, to: to.number, changed, messages, variables, model_settings };
}
