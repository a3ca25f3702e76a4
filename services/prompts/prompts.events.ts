// The prompts module's events: durable ones on `prompts.events` (through the outbox), and its broadcast to every
// replica. Shared templates' events carry no organizationId.
import type { E } from "../../lib/events/types";

type Ref = { templateId: string; name: string };

export type PromptsEvent =
	| E<"prompts.template.created", Ref & { shared: boolean }>
	| E<"prompts.version.published", Ref & { versionId: string; version: number }>
	| E<"prompts.label.moved", Ref & { label: string; fromVersionId: string | null; toVersionId: string | null }>
	| E<"prompts.override.created", Ref & { overridesTemplateId: string }>
	| E<
			"prompts.rendered",
			Ref & {
				versionId: string;
				executionId: string;
				kind: "render" | "complete";
				variantId?: string | null;
				experimentId?: string | null;
				latencyMs?: number;
				success?: boolean;
			}
	  >
	| E<"prompts.experiment.started", { experimentId: string; templateId: string; label: string }>
	| E<
			"prompts.experiment.completed",
			{
				experimentId: string;
				templateId: string;
				label: string;
				winnerVariantId: string | null;
				winnerVersionId: string | null;
			}
	  >;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"prompts.events": PromptsEvent;
	}
	interface BroadcastEvents {
		// A template's versions or labels changed (or it was created, overridden or removed): every replica drops
		// what it resolved for that name, in every organization (a shared template's name is everyone's).
		"prompts.changed": { name: string };
	}
}
