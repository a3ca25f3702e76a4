// The OpenAPI document says what the validators accept: here, that a setting which may be sent as null (to clear
// it) is documented as nullable, from the AI service's real action schema.
import { buildOpenApi } from "../../services/gateway/openapi";
import AiService from "../../services/ai/ai.service";

describe("OpenAPI document", () => {
	test("nullable parameters are documented as nullable, and the document validates", async () => {
		// `configure` comes from the service's settings mixin (mixins/org-settings.mixin.ts).
		const configure = AiService.mixins!.map(m => m.actions?.configure).find(Boolean);
		const doc: any = buildOpenApi(
			[{ methods: "PATCH", fullPath: "/api/ai/settings", actionName: "ai.configure" }],
			new Map([["ai.configure", configure]]),
			"test"
		);
		const body = doc.paths["/api/ai/settings"].patch.requestBody.content["application/json"].schema;
		expect(body.properties.logRetentionDays).toEqual({
			type: "integer",
			minimum: 1,
			maximum: 3650,
			nullable: true
		});
		expect(body.properties.storeContent).toEqual({ type: "boolean" });
		expect(body.additionalProperties).toBe(false);
		const { Validator } = await import("@seriousme/openapi-schema-validator");
		const result = await new Validator().validate(doc);
		expect(result.errors ?? []).toEqual([]);
	});
});

// The converter from validator rules to JSON schema, on a made-up action using every rule form the services use.
describe("OpenAPI converter: action params become the documented schema", () => {
	const params = {
		$$strict: true,
		id: "uuid",
		name: { type: "string", min: 1, max: 80 },
		email: "email|optional",
		role: { type: "enum", values: ["owner", "admin", "member", "viewer"], default: "member" },
		limit: { type: "number", integer: true, min: 1, max: 500, default: 100, convert: true },
		score: { type: "number", min: 0 },
		tags: { type: "array", items: "string", optional: true },
		headers: { type: "object", props: { name: "string", value: "string|optional" }, optional: true },
		target: [{ type: "uuid" }, { type: "string", max: 10 }],
		note: { type: "string", nullable: true, optional: true }
	};
	const doc = (methods: string, actionName = "demo.act") =>
		buildOpenApi(
			[{ methods, fullPath: "/api/demo/:id/items/", actionName }],
			new Map([[actionName, { params, permission: "demo:write" }]]),
			"t"
		);

	test("a POST documents path parameters in the path and the rest as a strict JSON body with its constraints", () => {
		const op: any = doc("POST").paths["/api/demo/{id}/items"].post;
		expect(op.parameters).toEqual([
			{ name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } }
		]);
		const body = op.requestBody.content["application/json"].schema;
		expect(body.additionalProperties).toBe(false);
		expect(body.properties.id).toBeUndefined();
		expect(body.required).toEqual(["name", "score", "target"]);
		expect(body.properties).toEqual({
			name: { type: "string", minLength: 1, maxLength: 80 },
			email: { type: "string", format: "email" },
			role: { type: "string", enum: ["owner", "admin", "member", "viewer"], default: "member" },
			limit: { type: "integer", minimum: 1, maximum: 500, default: 100 },
			score: { type: "number", minimum: 0 },
			tags: { type: "array", items: { type: "string" } },
			headers: {
				type: "object",
				properties: { name: { type: "string" }, value: { type: "string" } },
				required: ["name"]
			},
			target: {
				oneOf: [
					{ type: "string", format: "uuid" },
					{ type: "string", maxLength: 10 }
				]
			},
			note: { type: "string", nullable: true }
		});
		expect(op["x-permission"]).toBe("demo:write");
		expect(op.description).toContain("`demo:write`");
		expect(Object.keys(op.responses)).toEqual(["200", "401", "403", "422", "429"]);
	});

	test("a GET documents every parameter as a query parameter, required only when the validator requires it", async () => {
		const op: any = doc("GET").paths["/api/demo/{id}/items"].get;
		expect(op.requestBody).toBeUndefined();
		const q = Object.fromEntries(
			op.parameters.filter((p: any) => p.in === "query").map((p: any) => [p.name, p.required])
		);
		expect(q).toEqual({
			name: true,
			email: false,
			role: false,
			limit: false,
			score: true,
			tags: false,
			headers: false,
			target: true,
			note: false
		});
		const { Validator } = await import("@seriousme/openapi-schema-validator");
		expect((await new Validator().validate(doc("GET"))).errors ?? []).toEqual([]);
	});

	test("a public action needs no credentials in the document; catch-all routes are left out", () => {
		const actions = new Map([["demo.ping", { params: {}, permission: "public" }]]);
		const built: any = buildOpenApi(
			[
				{ methods: "GET", fullPath: "/api/demo/ping", actionName: "demo.ping" },
				{ methods: "*", fullPath: "/api/demo/any", actionName: "demo.ping" }
			],
			actions,
			"t"
		);
		expect(Object.keys(built.paths)).toEqual(["/api/demo/ping"]);
		expect(built.paths["/api/demo/ping"].get.security).toEqual([]);
		expect(Object.keys(built.paths["/api/demo/ping"].get.responses)).toEqual(["200", "429"]);
	});
});
