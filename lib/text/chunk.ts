// PLACEHOLDER until helper "text"'s lib/text/chunk.ts is merged (same signatures): splits by blank lines into
// pieces of at most maxTokens words; markdown headings and code are not treated specially here.
export type ChunkKind = "prose" | "markdown" | "code";
export interface ChunkOptions {
	kind?: ChunkKind;
	language?: string;
	path?: string;
	maxTokens?: number;
	overlapTokens?: number;
}
export interface Chunk {
	index: number;
	text: string;
	tokens: number;
	start: number;
	end: number;
	heading?: string;
	symbol?: string;
}

export function countTokens(text: string): number {
	return (text.match(/\S+/g) ?? []).length;
}

export function chunkText(text: string, options: ChunkOptions = {}): Chunk[] {
	const max = options.maxTokens ?? 256;
	const chunks: Chunk[] = [];
	const words = [...text.matchAll(/\S+/g)];
	for (let i = 0; i < words.length; i += max) {
		const part = words.slice(i, i + max);
		const start = part[0].index!;
		const last = part[part.length - 1];
		const end = last.index! + last[0].length;
		chunks.push({ index: chunks.length, text: text.slice(start, end), tokens: part.length, start, end });
	}
	return chunks;
}
