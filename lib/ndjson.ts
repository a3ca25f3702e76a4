// NDJSON (one JSON value a line), as streaming actions such as ai.stream return it; transport chunks may split or join
// lines anywhere.
import { Readable } from "stream";

// The values an NDJSON byte stream carries.
export async function* ndjson(stream: AsyncIterable<Buffer | string>): AsyncGenerator<any> {
	let rest = "";
	for await (const chunk of stream) {
		rest += chunk.toString();
		let i: number;
		while ((i = rest.indexOf("\n")) >= 0) {
			const line = rest.slice(0, i);
			rest = rest.slice(i + 1);
			if (line.trim()) yield JSON.parse(line);
		}
	}
	if (rest.trim()) yield JSON.parse(rest);
}

// The NDJSON byte stream of what `values` yields, as a streaming action returns it. A consumer that destroys the
// stream reaches the generator as Readable.from does it (an error thrown into it, or its return), so its catch and
// finally still see the consumer go; `abandoned` runs when the stream closes before its end.
export function ndjsonReadable(values: AsyncGenerator<unknown>, abandoned?: () => void): Readable {
	const encode = (r: IteratorResult<unknown>): IteratorResult<Buffer> =>
		r.done ? r : { done: false, value: Buffer.from(JSON.stringify(r.value) + "\n") };
	const lines: AsyncIterableIterator<Buffer> = {
		[Symbol.asyncIterator]: () => lines,
		next: async () => encode(await values.next()),
		return: async value => encode(await values.return(value)),
		throw: async err => encode(await values.throw(err))
	};
	const readable = Readable.from(lines, { objectMode: false });
	if (abandoned)
		readable.once("close", () => {
			if (!readable.readableEnded) abandoned();
		});
	return readable;
}
