// lib/ndjson.ts: an async generator as an NDJSON stream, and back. No infrastructure.
import { ndjson, ndjsonReadable } from "../../lib/ndjson";

describe("ndjsonReadable", () => {
	test("writes one JSON line per value, which ndjson reads back; a stream read to its end is not abandoned", async () => {
		async function* values() {
			yield { a: 1 };
			yield { done: true };
		}
		let abandoned = 0;
		const readable = ndjsonReadable(values(), () => abandoned++);
		const read: unknown[] = [];
		for await (const v of ndjson(readable)) read.push(v);
		expect(read).toEqual([{ a: 1 }, { done: true }]);
		await new Promise(r => setImmediate(r));
		expect(abandoned).toBe(0);
	});

	test("a consumer that destroys the stream reaches the generator's finally and calls `abandoned`", async () => {
		let cleanedUp = false;
		async function* values() {
			try {
				for (let i = 0; ; i++) {
					yield { i };
					await new Promise(r => setTimeout(r, 5));
				}
			} finally {
				cleanedUp = true;
			}
		}
		const abandoned = new Promise<void>(resolve => {
			const readable = ndjsonReadable(values(), resolve);
			readable.once("data", () => setImmediate(() => readable.destroy()));
		});
		await abandoned;
		await new Promise(r => setImmediate(r));
		expect(cleanedUp).toBe(true);
	});
});
