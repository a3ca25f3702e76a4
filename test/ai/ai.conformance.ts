// Samples for the conformance suite (test/helpers/conformance.ts): a model names a provider of its organization.
import type { ConformanceSamples } from "../helpers/conformance";

const samples: ConformanceSamples = {
	params: {
		"ai-deployments.create": async call => {
			const provider = await call("ai-providers.create", {
				name: `p-${Date.now()}`,
				base_url: "http://127.0.0.1:9/v1"
			});
			return { provider_id: provider.id, name: `m-${Date.now()}`, provider_model: "gpt-test" };
		}
	}
};
export default samples;
