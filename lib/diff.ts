// A text compared line by line (`diff`'s diffLines), as parts a side-by-side view shows: the left side is every part
// but the added ones, the right side every part but the removed ones. Shared by prompts' version diff and knowledge's
// revision diff.
import { diffLines } from "diff";

export interface LinePart {
	op: "equal" | "added" | "removed";
	text: string;
}

export function lineDiff(from: string, to: string): LinePart[] {
	return diffLines(from, to).map(p => ({ op: p.added ? "added" : p.removed ? "removed" : "equal", text: p.value }));
}
