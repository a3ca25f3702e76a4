// OpenAPI 3 document built from what the cluster actually serves: the gateway's aliases (method, path, action) and
// each action's validator schema and permission. Adding a module adds its routes here without editing anything.
import { DeclaredPermission, PUBLIC, ROLES, roleRank } from "../../lib/permissions";

type Rule = string | Record<string, any> | Rule[];

// The shapes named by `$$name` in a response rule (lib/response.ts `named`) while one document is built: each is
// emitted once under components.schemas and referenced from every operation that returns it.
type Components = Map<string, Record<string, any>>;

interface Alias {
	methods: string;
	fullPath: string;
	actionName: string;
}

const SIMPLE: Record<string, Record<string, unknown>> = {
	string: { type: "string" },
	email: { type: "string", format: "email" },
	uuid: { type: "string", format: "uuid" },
	url: { type: "string", format: "uri" },
	number: { type: "number" },
	boolean: { type: "boolean" },
	date: { type: "string", format: "date-time" },
	object: { type: "object" },
	record: { type: "object" },
	array: { type: "array", items: {} },
	any: {}
};

// fastest-validator rule -> JSON schema (the subset our actions use).
function toSchema(rule: Rule, named?: Components): { schema: Record<string, any>; optional: boolean } {
	if (Array.isArray(rule)) {
		const parts = rule.map(r => toSchema(r, named));
		return { schema: { oneOf: parts.map(p => p.schema) }, optional: parts.every(p => p.optional) };
	}
	if (typeof rule === "string") {
		const [type, ...mods] = rule.split("|");
		const schema: Record<string, any> = { ...(SIMPLE[type] ?? {}) };
		if (mods.includes("integer")) schema.type = "integer";
		if (mods.includes("nullable")) schema.nullable = true;
		if (schema.type === "object") schema.additionalProperties = true;
		return { schema, optional: mods.includes("optional") };
	}
	if (typeof rule.$$name === "string" && named) {
		const { $$name, ...shape } = rule;
		const { schema, optional } = toSchema(shape, named);
		const known = named.get($$name);
		if (known && JSON.stringify(known) !== JSON.stringify(schema))
			throw new Error(`OpenAPI: two different response shapes are both named "${$$name}"`);
		named.set($$name, schema);
		return { schema: { $ref: `#/components/schemas/${$$name}` }, optional };
	}
	const s: Record<string, any> = { ...(SIMPLE[rule.type] ?? {}) };
	if (rule.type === "enum") Object.assign(s, { type: "string", enum: rule.values });
	if (rule.type === "equal") Object.assign(s, { type: typeof rule.value, enum: [rule.value] });
	if (rule.type === "number" && rule.integer) s.type = "integer";
	if (rule.type === "string" || rule.type === "email") {
		if (rule.min != null) s.minLength = rule.min;
		if (rule.max != null) s.maxLength = rule.max;
	} else if (rule.type === "number") {
		if (rule.min != null) s.minimum = rule.min;
		if (rule.max != null) s.maximum = rule.max;
	}
	if (rule.type === "object" && rule.props) Object.assign(s, objectSchema(rule.props, [], named));
	// Without declared properties, any (openapi-typescript would otherwise type it as an empty record).
	else if (s.type === "object" && !rule.value) s.additionalProperties = true;
	if (rule.type === "array" && rule.items) s.items = toSchema(rule.items, named).schema;
	if (rule.type === "record" && rule.value) s.additionalProperties = toSchema(rule.value, named).schema;
	if (rule.default !== undefined) s.default = rule.default;
	if (rule.nullable) s.nullable = true;
	return { schema: s, optional: !!rule.optional || rule.default !== undefined };
}

function objectSchema(params: Record<string, Rule>, skip: string[] = [], named?: Components) {
	const properties: Record<string, any> = {};
	const required: string[] = [];
	for (const [name, rule] of Object.entries(params)) {
		if (name.startsWith("$$") || skip.includes(name)) continue;
		const { schema, optional } = toSchema(rule, named);
		properties[name] = schema;
		if (!optional) required.push(name);
	}
	return {
		type: "object",
		properties,
		...(required.length ? { required } : {}),
		...(params.$$strict ? { additionalProperties: false } : {})
	};
}

const errorResponse = (description: string) => ({
	description,
	content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }
});

// What an operation requires, with the permission's description and the roles holding it by default (from the
// declaring module's manifest).
function requires(permission: string, declared?: DeclaredPermission): string {
	if (!declared) return `Requires permission \`${permission}\`.`;
	const roles = ROLES.filter(r => roleRank(r) >= roleRank(declared.role)).join(", ");
	return `Requires permission \`${permission}\` (${declared.description}); held by default by ${roles}.`;
}

// What an action answers: its `response` rule (fastest-validator style, as its params; lib/response.ts), or
// anything when it declares none.
function responseSchema(action: { response?: Rule }, named: Components): Record<string, any> {
	if (action.response == null) return {};
	const { schema } = toSchema(action.response, named);
	return schema;
}

// The REST aliases moleculer-web's autoAliases make from services' `settings.rest` and their actions' `rest`
// (the string form our services use), for building the document without a running gateway (scripts/api-types.ts).
export function restAliases(
	services: { name: string; settings?: { rest?: unknown }; actions: Record<string, any> }[],
	prefix = "/api"
): Alias[] {
	const aliases: Alias[] = [];
	for (const svc of services) {
		const base = typeof svc.settings?.rest === "string" ? svc.settings.rest : `/${svc.name}`;
		for (const [key, action] of Object.entries(svc.actions)) {
			if (!action?.rest || (action.visibility != null && action.visibility !== "published")) continue;
			for (const rest of [action.rest].flat()) {
				if (typeof rest !== "string") continue;
				const [method, sub] = rest.includes(" ") ? rest.split(/\s+/) : ["*", rest];
				const fullPath = `${prefix}/${base}/${sub}`.replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
				aliases.push({ methods: method, fullPath, actionName: action.name ?? `${svc.name}.${key}` });
			}
		}
	}
	return aliases;
}

export function buildOpenApi(
	aliases: Alias[],
	actions: Map<string, any>,
	version: string,
	permissions: ReadonlyMap<string, DeclaredPermission> = new Map()
) {
	const paths: Record<string, Record<string, any>> = {};
	const named: Components = new Map();
	for (const alias of aliases) {
		const action = actions.get(alias.actionName);
		if (!action || alias.methods === "*") continue;
		const method = alias.methods.toLowerCase();
		const pathParams = [...alias.fullPath.matchAll(/:([A-Za-z0-9_]+)/g)].map(m => m[1]);
		const path = alias.fullPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/\/+$/, "") || "/";
		const params: Record<string, Rule> = action.params ?? {};
		const parameters: any[] = pathParams.map(name => ({
			name,
			in: "path",
			required: true,
			schema: params[name] ? toSchema(params[name]).schema : { type: "string" }
		}));
		let requestBody: any;
		if (method === "get" || method === "delete") {
			for (const [name, rule] of Object.entries(params)) {
				if (name.startsWith("$$") || pathParams.includes(name)) continue;
				const { schema, optional } = toSchema(rule);
				parameters.push({ name, in: "query", required: !optional, schema });
			}
		} else if (Object.keys(params).some(k => !k.startsWith("$$") && !pathParams.includes(k))) {
			requestBody = {
				required: true,
				content: { "application/json": { schema: objectSchema(params, pathParams) } }
			};
		}
		const isPublic = action.permission === PUBLIC;
		paths[path] ??= {};
		paths[path][method] = {
			operationId: alias.actionName,
			tags: [alias.actionName.split(".")[0]],
			summary: alias.actionName,
			...(action.permission && !isPublic
				? { description: requires(action.permission, permissions.get(action.permission)) }
				: {}),
			"x-permission": action.permission,
			...(isPublic ? { security: [] } : {}),
			...(parameters.length ? { parameters } : {}),
			...(requestBody ? { requestBody } : {}),
			responses: {
				"200": {
					description: "OK",
					// `responseType` names what a download answers (a CSV export); JSON otherwise.
					content: { [action.responseType ?? "application/json"]: { schema: responseSchema(action, named) } }
				},
				...(isPublic
					? {}
					: {
							"401": errorResponse("Missing or invalid credentials"),
							"403": errorResponse("Not allowed in this organization")
						}),
				// Refusable: a declared parameter, or unknown ones refused ($$strict: "remove" drops them instead).
				...(Object.keys(params).some(k => !k.startsWith("$$")) || (params.$$strict as unknown) === true
					? { "422": errorResponse("Invalid parameters; `fields` names them") }
					: {}),
				"429": errorResponse("Rate limited; see Retry-After")
			}
		};
	}
	return {
		openapi: "3.0.3",
		info: { title: "Coder IDE platform API", version },
		servers: [{ url: "/" }],
		security: [{ bearer: [] }, { apiKey: [] }],
		paths,
		components: {
			securitySchemes: {
				bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
				apiKey: { type: "apiKey", in: "header", name: "X-Api-Key" }
			},
			schemas: {
				...Object.fromEntries([...named].sort(([a], [b]) => a.localeCompare(b))),
				Error: {
					type: "object",
					required: ["error"],
					properties: {
						error: {
							type: "object",
							required: ["code", "message"],
							properties: {
								code: { type: "string" },
								message: { type: "string" },
								fields: {
									type: "array",
									items: {
										type: "object",
										properties: { field: { type: "string" }, message: { type: "string" } }
									}
								}
							}
						}
					}
				}
			}
		}
	};
}
