// Samples for the conformance suite (test/helpers/conformance.ts): an e-mail channel needs an SMTP host and a
// sender; a template a channel and a body.
import type { ConformanceSamples } from "../helpers/conformance";

let n = 0;
const samples: ConformanceSamples = {
	params: {
		"notifications-channels.create": async () => ({
			name: `mail-${Date.now()}-${n++}`,
			kind: "email",
			config: { host: "127.0.0.1", port: 2525, from: "ide@example.com" }
		}),
		"notifications-templates.create": async () => ({
			event_type: `usage.budget.exceeded${n++ ? `-x${n}` : ""}`.replace(/-x(\d+)$/, ".x$1"),
			channel: "in_app",
			body: "{{ used }} of {{ limit }}"
		}),
		"notifications-templates.preview": { event_type: "usage.budget.exceeded", body: "{{ used }}" }
	}
};
export default samples;
