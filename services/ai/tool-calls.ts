// Tool calls arrive in a chat stream as pieces: a call's first piece has its index, id and function name, and later
// pieces with the same index add to its arguments (cut anywhere in the JSON). Assembled, they are what the
// completion log keeps of a streamed answer, as a non-streamed answer's message has them.
export interface ToolCall {
	id: string;
	type: string;
	function: { name: string; arguments: string };
}

interface Piece {
	index?: number;
	id?: string;
	type?: string;
	function?: { name?: string; arguments?: string };
}

export class StreamedToolCalls {
	// Per choice, per tool call index.
	private readonly calls = new Map<number, Map<number, ToolCall>>();

	add(choice: number, pieces: Piece[] | undefined): void {
		if (!Array.isArray(pieces)) return;
		let byIndex = this.calls.get(choice);
		if (!byIndex) this.calls.set(choice, (byIndex = new Map()));
		pieces.forEach((p, i) => {
			const index = p.index ?? i;
			let call = byIndex.get(index);
			if (!call) byIndex.set(index, (call = { id: "", type: "function", function: { name: "", arguments: "" } }));
			if (p.id) call.id = p.id;
			if (p.type) call.type = p.type;
			if (p.function?.name) call.function.name += p.function.name;
			if (p.function?.arguments) call.function.arguments += p.function.arguments;
		});
	}

	// The first choice's calls in index order; undefined when it made none.
	list(choice = 0): ToolCall[] | undefined {
		const byIndex = this.calls.get(choice);
		if (!byIndex?.size) return undefined;
		return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
	}
}
