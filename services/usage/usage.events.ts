// The usage module's durable events (channel usage.events): a quota or budget crossed a warning threshold or its
// limit. Each crossing is sent once per limit, period and threshold.
import type { E } from "../../lib/events/types";

interface Crossing {
	organizationId: string;
	name: string; // the quota's or budget's name
	threshold: number; // the fraction of the limit crossed (1: the limit itself)
	scope: "organization" | "team" | "user" | "api_key";
	subjectId?: string; // the team, user or API key (none for the organization)
	period: "day" | "month";
	periodStart: string; // ISO 8601
	used: number;
	limit: number;
}

export type UsageEvent =
	| E<"usage.quota.warning", Crossing & { quotaId: string; metric: string; percentage: number }>
	| E<"usage.quota.exceeded", Crossing & { quotaId: string; metric: string }>
	| E<"usage.budget.warning", Crossing & { budgetId: string; percentage: number }>
	| E<"usage.budget.exceeded", Crossing & { budgetId: string }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"usage.events": UsageEvent;
	}
	interface BroadcastEvents {
		// An organization's quotas or budgets changed: every replica that enforces them drops its copy.
		"usage.limits.changed": { organizationId: string };
	}
}
