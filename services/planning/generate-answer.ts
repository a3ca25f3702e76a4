// The model's answer to plan generation (generate.ts): the JSON schema it is asked for and the strict check of what
// it sent. Anything unusable is a 502 naming the place in the answer; nothing is written.
import Validator from "fastest-validator";
import { ExternalFailure } from "../../lib/errors";
import { checkStepConfig, KINDS, STEP_KIND_NAMES, type StepKind } from "./planning.kinds";

export const PRIORITIES = KINDS.task.fields.priority.values;

export type Answer = {
	title: string;
	steps: { kind: StepKind; title: string; config: Record<string, unknown> }[];
	tasks: { title: string; description?: string; priority?: string; estimate?: number; article_ids: string[] }[];
};

// What the model is asked to answer (response_format). Checked again here: a model may ignore it.
export const ANSWER_SCHEMA = {
	type: "object",
	additionalProperties: false,
	required: ["title", "steps", "tasks"],
	properties: {
		title: { type: "string" },
		steps: {
			type: "array",
			items: {
				type: "object",
				additionalProperties: false,
				required: ["kind", "title", "config"],
				properties: { kind: { enum: STEP_KIND_NAMES }, title: { type: "string" }, config: { type: "object" } }
			}
		},
		tasks: {
			type: "array",
			items: {
				type: "object",
				additionalProperties: false,
				required: ["title", "article_ids"],
				properties: {
					title: { type: "string" },
					description: { type: "string" },
					priority: { enum: PRIORITIES },
					estimate: { type: "number" },
					article_ids: { type: "array", items: { type: "string" } }
				}
			}
		}
	}
};

const checkAnswer = new Validator({ haltOnFirstError: true }).compile({
	$$root: true,
	type: "object",
	strict: true,
	props: {
		title: { type: "string", min: 1, max: 300, trim: true },
		steps: {
			type: "array",
			max: 200,
			items: {
				type: "object",
				strict: true,
				props: {
					kind: { type: "enum", values: STEP_KIND_NAMES },
					title: { type: "string", min: 1, max: 300, trim: true },
					config: { type: "object", optional: true }
				}
			}
		},
		tasks: {
			type: "array",
			min: 1,
			max: 50,
			items: {
				type: "object",
				strict: true,
				props: {
					title: { type: "string", min: 1, max: 300, trim: true },
					description: { type: "string", max: 20000, optional: true },
					priority: { type: "enum", values: PRIORITIES, optional: true },
					estimate: { type: "number", min: 0, max: 1000, optional: true },
					article_ids: { type: "array", items: "string", max: 50 }
				}
			}
		}
	}
}) as (value: unknown) => true | { type: string; field: string; message?: string; actual?: unknown }[];

// The model answered, but not usefully: a 502 naming what in the answer was wrong (never the provider's secrets).
export const badAnswer = (field: string, message: string) =>
	new ExternalFailure(`the model's answer is unusable: ${field} ${message}`, 502, "BAD_MODEL_ANSWER", [
		{ field, message }
	]);

// The answer's text as a checked plan: schema, step configs, task fields, and article ids among those offered.
export function parseAnswer(text: unknown, offered: Set<string>, maxTasks: number): Answer {
	if (typeof text !== "string" || !text.trim()) throw badAnswer("answer", "is empty");
	let value: unknown;
	try {
		value = JSON.parse(text.replace(/^\s*```(?:json)?\s*|\s*```\s*$/g, ""));
	} catch {
		throw badAnswer("answer", "is not JSON");
	}
	const result = checkAnswer(value);
	if (result !== true) {
		const first = result[0];
		// A forbidden key is reported on its object: name the key itself.
		const extra = (first as { actual?: unknown }).actual;
		const key = first.type === "objectStrict" && typeof extra === "string" ? extra.split(", ")[0] : "";
		const name = [first.field?.replace(/^\$\$root\.?/, ""), key].filter(Boolean).join(".");
		const message = key ? "is not a field the schema allows" : (first.message ?? "does not fit the schema");
		throw badAnswer(name ? `answer.${name}` : "answer", message);
	}
	const answer = value as Answer;
	if (answer.tasks.length > maxTasks)
		throw badAnswer("answer.tasks", `has ${answer.tasks.length} tasks, more than the ${maxTasks} asked for`);
	answer.steps.forEach((s, i) => {
		try {
			s.config = checkStepConfig(i, s.kind, s.config);
		} catch (err) {
			const d = (err as { data?: { field: string; message: string }[] }).data?.[0];
			throw badAnswer(`answer.${d?.field ?? `steps[${i}]`}`, d?.message ?? "does not fit its kind");
		}
	});
	answer.tasks.forEach((t, i) => {
		t.article_ids.forEach((id, j) => {
			if (!offered.has(id))
				throw badAnswer(`answer.tasks[${i}].article_ids[${j}]`, "is not one of the articles offered");
		});
		t.article_ids = [...new Set(t.article_ids)];
	});
	return answer;
}
