// Samples for the conformance suite (test/helpers/conformance.ts): a server needs a transport and what it takes
// (the tiny stdio server: no network, so no host policy to open).
import type { ConformanceSamples } from "../helpers/conformance";
import { TINY } from "./stack";

let n = 0;
const samples: ConformanceSamples = {
	params: {
		"mcp-servers.create": async () => ({
			name: `conformance-${Date.now().toString(36)}-${n++}`,
			transport: "stdio",
			command: process.execPath,
			args: [TINY]
		})
	}
};
export default samples;
