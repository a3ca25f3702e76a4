// What each event type means to people: who hears of it, on which channels by default, whether it can be muted,
// whether repeats coalesce, and its default wording (liquid, rendered in the platform's sandbox). A type not listed
// here (a module added later) still arrives: it notifies no one until someone opts in to it, or the organization
// writes a template for it; its managers are the holders of the `:manage` permission of the module whose manifest
// publishes its channel.
import type { PlatformEvent } from "../../lib/events/types";
import { channelOf } from "../../lib/events/types";
import { moduleDirs } from "../../lib/authz";
import { getConfig } from "../../lib/config";
import { loadManifests } from "../../lib/module";

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
	},
	// Embeddings: one event per document written (bulk ingestion sends thousands), so documents are opt-in and
	// coalesce per collection; a job's progress is opt-in and coalesces per job; its end is on in-app.
	"embedding.document.created": {
		label: "Document embedded",
		permission: "embeddings:manage",
		defaults: off,
		coalesce: e => `collection:${e.collectionId}`,
		title: "Document {{ sourceId }} embedded",
		body: "{{ chunks }} chunks."
	},
	"embedding.document.updated": {
		label: "Document re-embedded",
		permission: "embeddings:manage",
		defaults: off,
		coalesce: e => `collection:${e.collectionId}`,
		title: "Document {{ sourceId }} re-embedded",
		body: "{{ chunks }} chunks."
	},
	"embedding.document.deleted": {
		label: "Embedded document removed",
		permission: "embeddings:manage",
		defaults: off,
		coalesce: e => `collection:${e.collectionId}`,
		title: "Document {{ sourceId }} removed",
		body: ""
	},
	"embedding.job.started": {
		label: "Embedding job started",
		permission: "embeddings:manage",
		defaults: off,
		title: "Embedding job ({{ kind }}) started",
		body: "{{ total }} to do."
	},
	"embedding.job.progress": {
		label: "Embedding job progress",
		permission: "embeddings:manage",
		defaults: off,
		coalesce: e => `job:${e.jobId}`,
		title: "Embedding job ({{ kind }}): {{ done }} of {{ total }}",
		body: ""
	},
	"embedding.job.completed": {
		label: "Embedding job completed",
		permission: "embeddings:manage",
		defaults: inApp,
		title: "Embedding job ({{ kind }}) completed",
		body: "{{ done }} of {{ total }} done."
	},
	"embedding.job.failed": {
		label: "Embedding job failed",
		permission: "embeddings:manage",
		defaults: inApp,
		title: "Embedding job ({{ kind }}) failed",
		body: "{{ error }}"
	},
	"embedding.usage.recorded": {
		label: "Local embeddings recorded",
		permission: "usage:manage",
		defaults: off,
		coalesce: e => `model:${e.model}`,
		title: "Local embeddings on {{ model }}",
		body: "{{ texts }} texts, {{ tokens }} tokens."
	},
	// Knowledge: an article's title is only for those who may read its category, so only managers (who see every
	// category) hear of articles, and only if they opt in.
	"knowledge.article.created": {
		label: "Article published",
		permission: "knowledge:manage",
		defaults: off,
		title: "Article published: {{ title }}",
		body: ""
	},
	"knowledge.article.updated": {
		label: "Article updated",
		permission: "knowledge:manage",
		defaults: off,
		coalesce: e => `article:${e.articleId}`,
		title: "Article updated: {{ title }}",
		body: "Revision {{ revision }} ({{ status }})."
	},
	"knowledge.article.deleted": {
		label: "Article removed",
		permission: "knowledge:manage",
		defaults: off,
		title: "Article removed: {{ title }}",
		body: ""
	},
	"knowledge.search.indexed": {
		label: "Article indexed for search",
		permission: "knowledge:manage",
		defaults: off,
		coalesce: e => `article:${e.articleId}`,
		title: "Article {% if indexed %}indexed{% else %}dropped from search{% endif %}",
		body: "Article {{ articleId }}{% if revision %}, revision {{ revision }}{% endif %}."
	}
};

// Channel -> the `:manage` permission of the module whose manifest publishes it (per services directory).
let managers: { servicesDir: string | undefined; byChannel: Map<string, string> } | undefined;
function managePermissionOf(type: string): string | undefined {
	const servicesDir = getConfig().servicesDir;
	if (!managers || managers.servicesDir !== servicesDir) {
		const byChannel = new Map<string, string>();
		for (const dir of moduleDirs())
			for (const m of loadManifests(dir)) {
				const manage = Object.keys(m.permissions ?? {}).find(p => p.endsWith(":manage"));
				if (manage) for (const channel of m.publishes ?? []) byChannel.set(channel, manage);
			}
		managers = { servicesDir, byChannel };
	}
	return managers.byChannel.get(channelOf(type));
}

// Security-relevant events of the identity and secrets modules are never muted, whatever the catalog says.
const CRITICAL_TYPE = /^(auth|secrets)\.|\.security\./;

// A type nobody described: named by itself, heard by the managers of the module that publishes it once they opt in
// (owners and admins when that module has no manage permission, or no manifest publishes its channel).
export function kindOf(type: string): EventKind {
	const known = CATALOG[type];
	const critical = CRITICAL_TYPE.test(type);
	if (known) return critical ? { ...known, critical } : known;
	return {
		label: type,
		permission: managePermissionOf(type) ?? `${type.split(".")[0]}:manage`,
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
