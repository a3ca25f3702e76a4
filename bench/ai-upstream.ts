// The bench's OpenAI-compatible upstream in a process of its own, as a real provider is: never in the client's
// event loop. bench/ai.ts starts it; it prints its URL.
import { FakeOpenAI } from "../test/helpers/fake-openai";

const up = new FakeOpenAI();
up.set("bench-upstream", { content: "const answer = 42;" });
up.set("bench-stream", {
	content:
		"function add(a, b) {\n  return a + b;\n}\n// twenty words or so of completion, streamed one word at a time",
	chunkDelayMs: 1
});
up.start().then(url => console.log(`upstream listening at ${url}`));
// The fake keeps every request it saw for the tests' assertions; here nothing reads them.
setInterval(() => (up.requests.length = 0), 1000).unref();
process.on("SIGTERM", () => up.stop().then(() => process.exit(0)));
