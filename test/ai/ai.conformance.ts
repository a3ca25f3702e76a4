// Samples for the conformance suite (test/helpers/conformance.ts): a deployment names a provider of its
// organization; presets, routing rules and fallback chains name deployed models.
import type { ConformanceSamples } from "../helpers/conformance";

type Call = (action: string, params: any) => Promise<any>;
let n = 0;
async function deployment(call: Call): Promise<{ provider_id: string; name: string; provider_model: string }> {
	const provider = await call("ai-providers.create", {
		name: `p-${Date.now()}-${n++}`,
		base_url: "http://127.0.0.1:9/v1"
	});
	return { provider_id: provider.id, name: `m-${Date.now()}-${n++}`, provider_model: "gpt-test" };
}
const deployed = async (call: Call) => (await call("ai-deployments.create", await deployment(call))).name as string;

const samples: ConformanceSamples = {
	params: {
		"ai-deployments.create": deployment,
		"ai-presets.create": async call => ({ name: `preset-${n++}`, model: await deployed(call) }),
		"ai-routing-rules.create": async call => ({ model: await deployed(call), strategy: "cost" }),
		"ai-fallback-chains.create": async call => ({ model: await deployed(call), fallbacks: [await deployed(call)] })
	}
};
export default samples;
