// NDJSON (one JSON value a line), as streaming actions such as ai.stream return it; transport chunks may split or join
// lines anywhere.
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
