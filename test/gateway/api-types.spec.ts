// The OpenAPI document carries what actions answer (their `response`), and the UI's API types
// (frontend/src/api/schema.d.ts) are generated from it: the committed file must be what `npm run api-types` writes
// now, so an action whose answer changes without regenerating fails here. No infrastructure: the document is built
// in-process from the services' schemas.
import fs from "fs";
import path from "path";
import { openApiFromServices, renderApiTypes, SCHEMA_FILE } from "../../scripts/api-types";
import { ROOT } from "../helpers/broker";

jest.setTimeout(60_000);

const doc: any = openApiFromServices(path.join(ROOT, "services"));
const ok = (p: string, method: string) => doc.paths[p][method].responses["200"].content["application/json"].schema;

test("auth, secrets and ai operations document their answers, and the document validates", async () => {
	expect(ok("/api/auth/login", "post").properties.user).toEqual({ $ref: "#/components/schemas/User" });
	expect(ok("/api/secrets", "get")).toEqual({ type: "array", items: { $ref: "#/components/schemas/SecretMeta" } });
	expect(ok("/api/secrets/{id}/reveal", "post")).toEqual({ $ref: "#/components/schemas/Revealed" });
	expect(ok("/api/secrets/settings", "get")).toEqual({ $ref: "#/components/schemas/VaultSettings" });
	// The configuration tables' rows come from DbMixin's declared columns and rules.
	expect(ok("/api/ai/providers", "get").properties.rows.items).toEqual({ $ref: "#/components/schemas/AiProvider" });
	expect(ok("/api/ai/deployments/{id}", "get")).toEqual({ $ref: "#/components/schemas/AiDeployment" });
	expect(ok("/api/ai/logs", "get").properties.rows.items).toEqual({ $ref: "#/components/schemas/CompletionLog" });
	const secret = doc.components.schemas.SecretMeta;
	expect(secret.required).toContain("current_version");
	expect(secret.properties.deleted_at).toEqual({ type: "string", format: "date-time", nullable: true });
	expect(doc.components.schemas.AiDeployment.properties.kind).toEqual({
		type: "string",
		enum: ["chat", "embedding"]
	});
	const { Validator } = await import("@seriousme/openapi-schema-validator");
	const result = await new Validator().validate(doc);
	expect(result.errors ?? []).toEqual([]);
});

test(`${SCHEMA_FILE} is what npm run api-types generates from the current services`, async () => {
	const committed = fs.readFileSync(path.join(ROOT, SCHEMA_FILE), "utf8");
	const expected = await renderApiTypes(doc);
	// Run `npm run api-types` and commit the file when this fails.
	expect(committed === expected).toBe(true);
});

test("a changed answer changes the generated types (the check above can fail)", async () => {
	const changed = structuredClone(doc);
	changed.components.schemas.SecretMeta.properties.name = { type: "integer" };
	const text = await renderApiTypes(changed);
	expect(text).not.toEqual(await renderApiTypes(doc));
	expect(text).toMatch(/SecretMeta: \{[^}]*name: number;/s);
});
