// The knowledge module's pure text helpers: links read from Markdown, slugs, snippet escaping, rank fusion.
import { parseLinks, slugify } from "../../services/knowledge/links";
import { escapeSnippet, fuse } from "../../services/knowledge/search";

describe("knowledge text helpers", () => {
	test("links: [[slug]], [[Title|label]] and /knowledge/articles/<id>, each once", () => {
		const id = "0b8f1c7e-3a52-4c1e-9a4f-2f1d3c4b5a69";
		const body = `See [[setup-guide]], [[Release Notes|the notes]] and [[setup-guide]].
[api](/knowledge/articles/${id.toUpperCase()}) and [[]] and [[ spaced ]]`;
		expect(parseLinks(body)).toEqual({ names: ["setup-guide", "Release Notes", "spaced"], ids: [id] });
	});

	test("slugs: lower case, accents folded, punctuation collapsed, never empty", () => {
		expect(slugify("Getting Started: Setup!")).toBe("getting-started-setup");
		expect(slugify("Café crème — déjà vu")).toBe("cafe-creme-deja-vu");
		expect(slugify("???")).toBe("article");
		expect(slugify("a".repeat(100)).length).toBe(80);
	});

	test("snippets: everything escaped, only the match markers become <mark>", () => {
		expect(escapeSnippet('<img src=x onerror="1"> & \uE000word\uE001')).toBe(
			"&lt;img src=x onerror=&quot;1&quot;&gt; &amp; <mark>word</mark>"
		);
	});

	test("reciprocal rank fusion: found by both beats found by one", () => {
		const scores = fuse([
			["a", "b", "c"],
			["c", "d"]
		]);
		expect(scores.get("c")).toBeCloseTo(1 / 63 + 1 / 61);
		expect(scores.get("c")!).toBeGreaterThan(scores.get("a")!);
		// The same rank in either list counts the same.
		expect(scores.get("b")).toBe(scores.get("d"));
	});
});
