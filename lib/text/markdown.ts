// Markdown sections for the chunker: a section runs from an ATX heading ("## Title") to the next one, and knows its
// heading path ("Guide > Install"). Inside, blocks are code fences (kept whole where they fit) and runs of lines
// separated by blank lines. "#" lines inside a fence are code, not headings.
export interface MarkdownBlock {
	start: number;
	end: number;
	fence: boolean;
}
export interface MarkdownSection {
	start: number;
	end: number;
	heading?: string;
	blocks: MarkdownBlock[];
}

const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;

export function markdownSections(text: string): MarkdownSection[] {
	const sections: MarkdownSection[] = [];
	const path: { level: number; title: string }[] = [];
	let section: MarkdownSection = { start: 0, end: 0, blocks: [] };
	let block: MarkdownBlock | undefined;
	let fence: string | undefined;
	let pos = 0;
	const endBlock = (at: number) => {
		if (block) {
			block.end = at;
			section.blocks.push(block);
			block = undefined;
		}
	};
	while (pos < text.length) {
		const nl = text.indexOf("\n", pos);
		const lineEnd = nl === -1 ? text.length : nl;
		const next = nl === -1 ? text.length : nl + 1;
		const line = text.slice(pos, lineEnd).replace(/\r$/, "");
		const fenceMark = FENCE.exec(line)?.[1];
		if (fence) {
			if (
				fenceMark &&
				fenceMark[0] === fence[0] &&
				fenceMark.length >= fence.length &&
				!line.trim().slice(fenceMark.length).trim()
			) {
				fence = undefined;
				endBlock(lineEnd);
			}
		} else if (fenceMark) {
			endBlock(pos);
			fence = fenceMark;
			block = { start: pos, end: lineEnd, fence: true };
		} else if (HEADING.test(line)) {
			endBlock(pos);
			section.end = pos;
			if (section.blocks.length) sections.push(section);
			const [, hashes, title] = HEADING.exec(line)!;
			while (path.length && path[path.length - 1].level >= hashes.length) path.pop();
			path.push({ level: hashes.length, title: title.trim() });
			section = { start: pos, end: 0, heading: path.map(p => p.title).join(" > "), blocks: [] };
			section.blocks.push({ start: pos, end: lineEnd, fence: false });
		} else if (!line.trim()) {
			endBlock(pos);
		} else if (!block) {
			block = { start: pos, end: lineEnd, fence: false };
		}
		pos = next;
	}
	endBlock(text.length);
	section.end = text.length;
	if (section.blocks.length) sections.push(section);
	return sections;
}
