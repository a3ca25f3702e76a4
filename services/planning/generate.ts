// A plan generated from a goal (planning-plans.generate): the caller's readable knowledge articles for the goal
// (knowledge.search), a prompt rendered by the prompts module (the built-in template below, or a template of the
// organization named in `prompt`), one completion by the ai module (its quotas and budgets apply), and the model's
// JSON answer checked strictly before anything is written. Then, in one transaction, the plan with its steps and
// the tasks (kind `task`, written as planning-entities writes any entity, each with `plan_id` and `article_ids`: the
// articles it used, which are only ever articles the search returned to this caller), with planning.plan.created,
// planning.entity.created per task and planning.task.generated in the outbox. A bad answer writes nothing.
import type { Context } from "moleculer";
import { getDb, type Queryable } from "../../lib/db";
import { authOf, holds } from "../../lib/authz";
import { actionMissing, callModule as call, invalid } from "../../lib/errors";
import { announceChange } from "../../lib/live";
import { listOf, named } from "../../lib/response";
import { type DbService } from "../../mixins/db.mixin";
import { dropCachedAnswers } from "../../mixins/cached-answers.mixin";
import type { Publish } from "../../mixins/events.mixin";
import { STEP_KIND_NAMES } from "./planning.kinds";
import { ANSWER_SCHEMA, parseAnswer, PRIORITIES } from "./generate-answer";
import { ENTITY_ROW, writeEntity } from "./entities.service";

interface Self extends DbService {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
}
type Message = { role: string; content: string };
type Article = { id: string; title: string; snippet: string };
export interface GenerateParams {
	goal: string;
	title?: string;
	project_id?: string;
	model?: string;
	prompt?: { name: string; label?: string };
	options?: { max_tasks?: number; articles?: number; search?: string };
}

// The built-in template. A template of the organization replaces it when named in `prompt`; it receives the same
// variables (goal, project, articles, max_tasks, step_kinds) and must declare each of them.
export const DEFAULT_TEMPLATE = {
	messages: [
		{
			role: "system" as const,
			content:
				"You turn a goal into a plan of work. Answer with one JSON object only: " +
				'{"title": string, "steps": [{"kind": one of {{ step_kinds }}, "title": string, "config": object}], ' +
				'"tasks": [{"title": string, "description": string, "priority": one of ' +
				`${PRIORITIES.join(", ")}, "article_ids": [ids of the articles below the task relies on]}]}. ` +
				"Cite only the articles listed, by their id; a task that needs none has an empty list."
		},
		{
			role: "user" as const,
			content:
				"Goal: {{ goal }}\n{% if project %}Project: {{ project }}\n{% endif %}" +
				"At most {{ max_tasks }} tasks.\nKnowledge articles:\n" +
				"{% for a in articles %}- id {{ a.id }}: {{ a.title }}: {{ a.snippet }}\n{% else %}(none)\n{% endfor %}"
		}
	],
	variables: [
		{ name: "goal", type: "string" as const },
		{ name: "project", type: "string" as const, required: false },
		{ name: "articles", type: "list" as const },
		{ name: "max_tasks", type: "number" as const },
		{ name: "step_kinds", type: "string" as const }
	]
};

// A goal is a sentence, and search's full-text side wants every word: any of its words instead (websearch `or`),
// ranked by how many match.
export function searchQueryOf(goal: string): string {
	const words = [...new Set(goal.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}_-]{2,}/gu) ?? [])];
	let query = "";
	for (const w of words.filter(w => w !== "or").slice(0, 40)) {
		if (query.length + w.length + 4 > 500) break;
		query = query ? `${query} or ${w}` : w;
	}
	return query;
}

// The caller's readable articles for the goal: none when the caller may not read the knowledge base or the module is
// not running (the plan is then made without articles). Snippets lose their <mark> highlighting.
async function articlesFor(ctx: Context, query: string, k: number): Promise<Article[]> {
	if (k === 0 || !query || !holds(authOf(ctx), "knowledge:read")) return [];
	try {
		const r = await ctx.call<{ results: Article[] }, object>("knowledge.search", { query, k });
		return r.results.map(a => ({ id: a.id, title: a.title, snippet: a.snippet.replace(/<\/?mark>/g, "") }));
	} catch (err) {
		if (actionMissing(err, "knowledge.search")) return [];
		throw err;
	}
}

type Rendered = { messages: Message[]; model_settings?: Record<string, unknown> | null };

// The messages and model settings: the organization's template when named (it must be the organization's own, not a
// shared one), the built-in one otherwise (rendered by the prompts module's sandbox, as a preview: not a recorded use).
async function render(ctx: Context, p: GenerateParams, variables: Record<string, unknown>): Promise<Rendered> {
	if (!p.prompt)
		return call<Rendered>(ctx, "prompts.preview", {
			messages: DEFAULT_TEMPLATE.messages,
			variables: DEFAULT_TEMPLATE.variables,
			values: variables
		});
	const r = await call<Rendered & { template: { shared: boolean } }>(ctx, "prompts.render", {
		name: p.prompt.name,
		...(p.prompt.label ? { label: p.prompt.label } : {}),
		variables
	});
	if (r.template.shared) throw invalid("prompt.name", "must name a template of your organization");
	return r;
}

export const generateActions = {
	// A goal → a plan with steps and its tasks, each task linked to the knowledge articles it used.
	generate: {
		rest: "POST /generate",
		permission: "planning:write",
		// It reaches a paid model: sent once, and timed by the provider's timeout, not the request's.
		external: true,
		params: {
			$$strict: true,
			goal: { type: "string", min: 1, max: 5000, trim: true, label: "goal" },
			title: { type: "string", min: 1, max: 300, trim: true, optional: true, label: "title" },
			project_id: { type: "uuid", optional: true, label: "project" },
			model: { type: "string", min: 1, max: 200, optional: true, label: "model" },
			prompt: {
				type: "object",
				strict: true,
				optional: true,
				props: {
					name: { type: "string", min: 1, max: 200 },
					label: { type: "string", min: 1, max: 50, optional: true }
				}
			},
			options: {
				type: "object",
				strict: true,
				optional: true,
				props: {
					max_tasks: { type: "number", integer: true, min: 1, max: 50, optional: true },
					articles: { type: "number", integer: true, min: 0, max: 20, optional: true },
					search: { type: "string", min: 1, max: 500, trim: true, optional: true }
				}
			}
		},
		response: named("PlanningGenerated", {
			plan: "object",
			tasks: listOf(ENTITY_ROW),
			article_ids: listOf("uuid"),
			articles: listOf({ type: "object", props: { id: "uuid", title: "string" } })
		}),
		async handler(this: Self, ctx: Context<GenerateParams>) {
			const org = this.tenantId(ctx)!;
			const p = ctx.params;
			const maxTasks = p.options?.max_tasks ?? 10;
			let project: { id: string; title: string } | null = null;
			if (p.project_id) {
				const { rows } = await (
					await getDb()
				).query<{ id: string; title: string }>(
					"SELECT id, title FROM planning_entities WHERE id = $1 AND organization_id = $2 AND kind = 'project'",
					[p.project_id, org]
				);
				if (!rows.length) throw invalid("project_id", "is not a project of this organization");
				project = rows[0];
			}
			const query = p.options?.search ?? searchQueryOf(p.goal);
			const articles = await articlesFor(ctx, query, p.options?.articles ?? 5);
			const rendered = await render(ctx, p, {
				goal: p.goal,
				project: project?.title ?? null,
				articles,
				max_tasks: maxTasks,
				step_kinds: STEP_KIND_NAMES.join(", ")
			});
			const { model: templateModel, ...settings } = rendered.model_settings ?? {};
			const model = p.model ?? (templateModel as string | undefined);
			if (!model) throw invalid("model", "is required: the template names no model");
			const completion = await call<{ choices?: { message?: { content?: unknown } }[] }>(ctx, "ai.complete", {
				...settings,
				model,
				messages: rendered.messages,
				response_format: {
					type: "json_schema",
					json_schema: { name: "plan", strict: false, schema: ANSWER_SCHEMA }
				}
			});
			const answer = parseAnswer(
				completion.choices?.[0]?.message?.content,
				new Set(articles.map(a => a.id)),
				maxTasks
			);
			const { plan, tasks } = await this.withEvents(async (tx, publish) => {
				const plan: Record<string, any> = await this.adapter.withTx(tx).insert({
					organization_id: org,
					title: p.title ?? answer.title,
					goal: p.goal,
					steps: JSON.stringify(answer.steps)
				});
				publish("planning.plan.created", { organizationId: org, planId: plan.id, title: plan.title });
				// The project was checked before the model was asked; it must still be there for its tasks.
				if (project) {
					const { rows } = await tx.query("SELECT 1 FROM planning_entities WHERE id = $1 FOR SHARE", [
						project.id
					]);
					if (!rows.length) throw invalid("project_id", "was removed while the plan was generated");
				}
				// Each task as one made by hand (its checks, defaults and event), recording the plan it was made for.
				const tasks: Record<string, any>[] = [];
				for (const [i, t] of answer.tasks.entries())
					tasks.push(
						await writeEntity(tx, publish, org, null, {
							kind: "task",
							title: t.title,
							description: t.description ?? "",
							parent_id: project?.id ?? null,
							position: i,
							fields: {
								...(t.priority ? { priority: t.priority } : {}),
								...(t.estimate != null ? { estimate: t.estimate } : {})
							},
							article_ids: t.article_ids,
							plan_id: plan.id
						})
					);
				publish("planning.task.generated", {
					organizationId: org,
					planId: plan.id,
					taskCount: tasks.length,
					taskIds: tasks.map(t => t.id),
					articleIds: [...new Set(tasks.flatMap(t => t.article_ids as string[]))]
				});
				return { plan, tasks };
			});

			const json = await this.transformDocuments(ctx, {}, plan);
			await this.entityChanged("created", json, ctx, plan);
			await dropCachedAnswers(this.broker, "planning-entities", this.logger);
			for (const t of tasks)
				announceChange(this.broker, ctx, {
					entity: "planning-entities",
					noun: "planning entity",
					id: t.id,
					action: "created",
					label: t.title,
					permission: "planning:read"
				});
			const used = new Set(tasks.flatMap(t => t.article_ids as string[]));
			// The used articles' titles, for showing the links: the caller just read them in its own search.
			return {
				plan: json,
				tasks,
				article_ids: [...used],
				articles: articles.filter(a => used.has(a.id)).map(a => ({ id: a.id, title: a.title }))
			};
		}
	}
};
