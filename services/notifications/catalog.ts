// What each event type means to people: who hears of it, on which channels by default, whether it can be muted,
// whether repeats coalesce, and its default wording (liquid, rendered in the platform's sandbox). A type not listed
// here (a module added later) still arrives: it notifies no one until someone opts in to it, or the organization
// writes a template for it.
import type { PlatformEvent } from "../../lib/events/types";

export type UserChannel = "in_app" | "email";
export type ChannelKind = UserChannel | "webhook";
export const USER_CHANNELS: UserChannel[] = ["in_app", "email"];
export const CHANNEL_KINDS: ChannelKind[] = ["in_app", "email", "webhook"];

export type AnyEvent = PlatformEvent | ({ type: string; id: string; time: string } & Record<string, unknown>);

export interface EventKind {
	label: string; // the row of the preferences matrix
	// Members whose role holds this permission hear of it (besides the user the event names).
	permission?: string;
	// On by default per channel; false for both: only who opts in hears of it.
	defaults: Record<UserChannel, boolean>;
	// Cannot be muted and ignores quiet hours: money and security.
	critical?: boolean;
	// Repeats with the same subject within the window become one notification with a count.
	coalesce?: (e: any) => string;
	title: string;
	body: string;
}

const off = { in_app: false, email: false };
const inApp = { in_app: true, email: false };
const both = { in_app: true, email: true };

const crossing = (what: string) =>
	`{{ scope }}{% if scope != "organization" %} {{ subjectId }}{% endif %}: {{ used }} of {{ limit }} ${what} ` +
	`this {{ period }}{% if percentage %} ({{ percentage }}%){% endif %}.`;

export const CATALOG: Record<string, EventKind> = {
	"ai.completion.started": {
		label: "AI request started",
		permission: "ai:manage",
		defaults: off,
		title: "AI request started on {{ model }}",
		body: "Request {{ requestId }}."
	},
	"ai.completion.completed": {
		label: "AI request completed",
		permission: "ai:manage",
		defaults: off,
		coalesce: e => `model:${e.model}`,
		title: "AI request completed on {{ model }}",
		body: "{{ tokensUsed }} tokens in {{ durationMs }} ms."
	},
	"ai.completion.failed": {
		label: "AI request failed",
		permission: "ai:manage",
		defaults: off,
		coalesce: e => `model:${e.model}`,
		title: "AI request failed on {{ model }}",
		body: "{{ error }}"
	},
	"ai.completion.fallback": {
		label: "AI fallback used",
		permission: "ai:manage",
		defaults: off,
		coalesce: e => `${e.fromModel}->${e.toModel}`,
		title: "{{ fromModel }} fell back to {{ toModel }}",
		body: "{{ reason }}"
	},
	"ai.usage.recorded": {
		label: "AI usage recorded",
		permission: "usage:manage",
		defaults: off,
		coalesce: e => `model:${e.model}`,
		title: "AI usage on {{ model }}",
		body: "{{ inputTokens }} tokens in, {{ outputTokens }} out, ${{ cost }}."
	},
	"ai.ratelimit.exceeded": {
		label: "AI rate limit reached",
		permission: "ai:manage",
		defaults: inApp,
		coalesce: e => `${e.scope}:${e.userId ?? ""}`,
		title: "AI rate limit reached ({{ scope }})",
		body: "Requests were refused because the {{ scope }} rate limit was reached."
	},
	"ai.provider.health.changed": {
		label: "AI provider health changed",
		permission: "ai:manage",
		defaults: inApp,
		coalesce: e => `provider:${e.providerId}`,
		title: "AI provider is {{ status }}",
		body: "Provider {{ providerId }} is now {{ status }}."
	},
	"usage.quota.warning": {
		label: "Quota nearly used",
		permission: "usage:manage",
		defaults: both,
		title: "{{ metric }} quota at {{ percentage }}%",
		body: crossing("{{ metric }}")
	},
	"usage.quota.exceeded": {
		label: "Quota exceeded",
		permission: "usage:manage",
		defaults: both,
		critical: true,
		title: "{{ metric }} quota exceeded",
		body: crossing("{{ metric }}")
	},
	"usage.budget.warning": {
		label: "Budget nearly spent",
		permission: "usage:manage",
		defaults: both,
		title: "Budget at {{ percentage }}%",
		body: crossing("dollars")
	},
	"usage.budget.exceeded": {
		label: "Budget exceeded",
		permission: "usage:manage",
		defaults: both,
		critical: true,
		title: "Budget exceeded",
		body: crossing("dollars")
	},
	"prompts.template.created": {
		label: "Prompt template created",
		permission: "prompts:write",
		defaults: off,
		title: "Prompt template {{ name }} created",
		body: ""
	},
	"prompts.version.published": {
		label: "Prompt version published",
		permission: "prompts:write",
		defaults: off,
		title: "{{ name }} version {{ version }} published",
		body: ""
	},
	"prompts.label.moved": {
		label: "Prompt label moved",
		permission: "prompts:write",
		defaults: inApp,
		title: "{{ name }}: label {{ label }} moved",
		body: "{% if toVersionId %}Now on version {{ toVersionId }}.{% else %}Removed.{% endif %}"
	},
	"prompts.override.created": {
		label: "Shared prompt overridden",
		permission: "prompts:write",
		defaults: off,
		title: "Shared prompt {{ name }} overridden",
		body: ""
	},
	"prompts.rendered": {
		label: "Prompt rendered",
		permission: "prompts:write",
		defaults: off,
		coalesce: e => `template:${e.templateId}`,
		title: "{{ name }} rendered",
		body: ""
	},
	"prompts.experiment.started": {
		label: "Prompt experiment started",
		permission: "prompts:write",
		defaults: off,
		title: "Experiment on {{ label }} started",
		body: ""
	},
	"prompts.experiment.completed": {
		label: "Prompt experiment completed",
		permission: "prompts:write",
		defaults: inApp,
		title: "Experiment on {{ label }} completed",
		body: "{% if winnerVersionId %}Winner: version {{ winnerVersionId }}.{% else %}No winner.{% endif %}"
	}
};

// Security-relevant events of the identity and secrets modules are never muted, whatever the catalog says.
const CRITICAL_TYPE = /^(auth|secrets)\.|\.security\./;

// A type nobody described: named by itself, heard by the managers of its module once they opt in.
export function kindOf(type: string): EventKind {
	const known = CATALOG[type];
	const critical = CRITICAL_TYPE.test(type);
	if (known) return critical ? { ...known, critical } : known;
	return {
		label: type,
		permission: `${type.split(".")[0]}:manage`,
		defaults: critical ? both : off,
		critical,
		title: "{{ type }}",
		body: ""
	};
}

// Types every channel carries unless it lists its own: those that notify by default.
export const notifiesByDefault = (type: string) => {
	const k = kindOf(type);
	return !!k.critical || k.defaults.in_app || k.defaults.email;
};
