// Samples for the conformance suite (test/helpers/conformance.ts): a relation names two entities of the
// organization; a cycle ends after it starts.
import type { ConformanceSamples } from "../helpers/conformance";

let n = 0;
const samples: ConformanceSamples = {
	params: {
		"planning-relations.create": async call => {
			const entity = async () => (await call("planning-entities.create", { kind: "task", title: `t${n++}` })).id;
			return { kind: "relates", source_id: await entity(), target_id: await entity() };
		},
		"planning-cycles.create": async () => ({
			name: `cycle-${n++}`,
			start_date: "2027-01-04",
			end_date: "2027-01-18"
		})
	}
};
export default samples;
