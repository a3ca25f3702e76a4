// Rerank: a chat deployment reads the query and the candidate passages and answers a relevance score (0–10) for
// each as JSON; candidates are reordered by it (ties keep their earlier order). An answer that is not such JSON is
// the deployment's failure, reported as such.
import { ExternalFailure } from "../../lib/errors";
import type { CallAi } from "./store";
import type { Hit } from "./search";

const MAX_PASSAGE = 2000;

export async function rerank<H extends Omit<Hit, "rank">>(
	callAi: CallAi,
	deployment: string,
	query: string,
	hits: H[]
): Promise<H[]> {
	if (!hits.length) return hits;
	const passages = hits.map((h, i) => `[${i}] ${h.text.slice(0, MAX_PASSAGE)}`).join("\n\n");
	const answer = await callAi("ai.complete", {
		model: deployment,
		temperature: 0,
		messages: [
			{
				role: "system",
				content:
					"You rate how relevant each passage is to the query, from 0 (unrelated) to 10 (answers it). " +
					'Answer only JSON: {"scores": [<one number per passage, in passage order>]}.'
			},
			{ role: "user", content: `Query: ${query}\n\nPassages:\n${passages}` }
		]
	});
	const scores = parseScores(answer?.choices?.[0]?.message?.content, hits.length);
	if (!scores) throw new ExternalFailure(`rerank deployment ${deployment} did not answer {"scores": [...]}`);
	return hits
		.map((h, i) => ({ h: { ...h, score: scores[i], scores: { ...h.scores, rerank: scores[i] } }, i }))
		.sort((a, b) => b.h.score - a.h.score || a.i - b.i)
		.map(x => x.h);
}

// The scores array of the first JSON object in the text, when it has one number per passage.
export function parseScores(text: unknown, n: number): number[] | undefined {
	if (typeof text !== "string") return undefined;
	const json = text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1);
	try {
		const scores = JSON.parse(json)?.scores;
		if (Array.isArray(scores) && scores.length === n && scores.every(s => typeof s === "number")) return scores;
	} catch {
		return undefined;
	}
	return undefined;
}
