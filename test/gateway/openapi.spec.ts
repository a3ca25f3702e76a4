// The OpenAPI document says what the validators accept: here, that a setting which may be sent as null (to clear
// it) is documented as nullable, from the AI service's real action schema.
import { buildOpenApi } from "../../services/gateway/openapi";
import AiService from "../../services/ai/ai.service";

describe("OpenAPI document", () => {
	test("nullable parameters are documented as nullable, and the document validates", async () => {
		// `configure` comes from the service's settings mixin (mixins/org-settings.mixin.ts).
		const configure = AiService.mixins!.map(m => m.actions?.configure).find(Boolean);
		const doc: any = buildOpenApi([{ methods: "PATCH", fullPath: "/api/ai/settings", actionName: "ai.configure" }], new Map([["ai.configure", configure]]), "test");
		const body = doc.paths["/api/ai/settings"].patch.requestBody.content["application/json"].schema;
		expect(body.properties.logRetentionDays).toEqual({ type: "integer", minimum: 1, maximum: 3650, nullable: true });
		expect(body.properties.storeContent).toEqual({ type: "boolean" });
		expect(body.additionalProperties).toBe(false);
		const { Validator } = await import("@seriousme/openapi-schema-validator");
		const result = await new Validator().validate(doc);
		expect(result.errors ?? []).toEqual([]);
	});
});
