// The usage module's durable events (channel usage.events): a quota or budget crossed a warning threshold or its
// limit. Each crossing is sent once per limit, period and threshold.
import type { E } from "../../lib/events/types";

interface Crossing {
	organizationId: string;
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
}
