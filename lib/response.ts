// What an action answers, written like its params (fastest-validator rules) in the action's `response`. The OpenAPI
// builder (services/gateway/openapi.ts) turns it into the operation's 200 schema, and the UI's API types are
// generated from that document (npm run api-types), so a row type is written once, here, next to the action.
// Rules are documentation of the answer: nothing validates a response at run time.

export type ResponseRule = string | { [key: string]: unknown } | ResponseRule[];

// An object shape with a name: emitted once under components.schemas, referenced wherever it is returned.
export function named(name: string, props: Record<string, ResponseRule>): { [key: string]: unknown } {
	return { type: "object", props, $$name: name };
}

export const listOf = (item: ResponseRule) => ({ type: "array", items: item });

// moleculer-db's `list` page.
export const pageOf = (item: ResponseRule) => ({
	type: "object",
	props: {
		rows: listOf(item),
		total: "number|integer",
		page: "number|integer",
		pageSize: "number|integer",
		totalPages: "number|integer"
	}
});

// A named shape plus a few fields of one answer (`{ ...secret, deleted: true }`).
export function extend(base: { [key: string]: unknown }, props: Record<string, ResponseRule>) {
	const { $$name: _name, ...shape } = base as { $$name?: string; props: Record<string, ResponseRule> };
	return { ...shape, props: { ...shape.props, ...props } };
}

// The row a table's writable rules describe, as a client reads it back: every column present; a column clients may
// leave out has its default, one they may set to null (`nullable`) may be null; `id`, `organization_id` and the
// `*_at` timestamps are typed by convention and any other column is typed by `known` (or left open).
export function rowOf(
	columns: string[],
	writable: Record<string, unknown>,
	known: Record<string, ResponseRule> = {}
): Record<string, ResponseRule> {
	const props: Record<string, ResponseRule> = {};
	for (const column of columns) {
		if (known[column] !== undefined) props[column] = known[column];
		else if (column === "id" || column === "organization_id") props[column] = "uuid";
		else if (column.endsWith("_at"))
			props[column] = column === "created_at" || column === "updated_at" ? "date" : "date|nullable";
		else if (writable[column] !== undefined) props[column] = asRead(writable[column]);
		else props[column] = "any";
	}
	return props;
}

// A write rule as the value read back: never optional (the column is always there), its limits left out.
function asRead(rule: unknown): ResponseRule {
	if (typeof rule === "string") {
		const [type, ...mods] = rule.split("|");
		return [type, ...mods.filter(m => m === "integer" || m === "nullable")].join("|");
	}
	if (rule && typeof rule === "object" && !Array.isArray(rule)) {
		const {
			optional: _o,
			default: _d,
			convert: _c,
			trim: _t,
			min: _n,
			max: _x,
			...read
		} = rule as {
			[key: string]: unknown;
		};
		return read;
	}
	return "any";
}

// A node's service descriptions travel to other nodes with every object that appears twice dropped (Moleculer's
// circular-reference guard), so a shape shared by two actions (`response: SecretMeta` on list, get, create…) would
// reach a remote gateway's OpenAPI only once. Each action gets its own copy when its service is created.
export const ResponsesMiddleware = {
	name: "Responses",
	serviceCreating(_service: unknown, schema: { actions?: Record<string, unknown> }) {
		for (const action of Object.values(schema.actions ?? {}))
			if (action && typeof action === "object" && "response" in action)
				(action as { response: unknown }).response = copy((action as { response: unknown }).response);
	}
};

function copy(value: unknown): any {
	if (Array.isArray(value)) return value.map(copy);
	if (value && typeof value === "object")
		return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]));
	return value;
}
