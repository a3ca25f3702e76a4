// What the secrets module's actions answer (their `response`): OpenAPI and the UI's generated types come from here.
// No shape here ever carries a value except Revealed and the export's content.
import { extend, listOf, named } from "../../lib/response";

export { extend, listOf };

export const SecretMeta = named("SecretMeta", {
	id: "uuid",
	organization_id: "uuid",
	project_id: "uuid|nullable",
	environment: "string",
	name: "string",
	description: "string",
	tags: { type: "array", items: "string" },
	current_version: "number|integer",
	created_by: "uuid|nullable",
	created_at: "date",
	updated_at: "date",
	deleted_at: "date|nullable"
});

export const SecretVersion = named("SecretVersion", {
	version: "number|integer",
	created_by: "uuid|nullable",
	created_at: "date",
	destroyed_at: "date|nullable",
	key_version: "number|integer"
});

export const SecretDetail = extend(SecretMeta, { versions: listOf(SecretVersion) });

export const Revealed = named("Revealed", {
	name: "string",
	environment: "string",
	version: "number|integer",
	value: "string",
	id: "uuid|optional"
});

export const Grant = named("Grant", {
	id: "uuid",
	organization_id: "uuid",
	secret_id: "uuid|nullable",
	environment: "string|nullable",
	name_prefix: "string|nullable",
	permission: { type: "enum", values: ["read", "write"] },
	grantee_type: { type: "enum", values: ["user", "team", "service"] },
	grantee_id: "string",
	expires_at: "date|nullable",
	created_by: "uuid|nullable",
	created_at: "date"
});

export const ImportResult = named("ImportResult", {
	created: listOf("string"),
	updated: listOf("string"),
	skipped: listOf("string")
});

export const Exported = {
	type: "object",
	props: { environment: "string", count: "number|integer", content: "string" }
};
export const Revoked = { type: "object", props: { id: "uuid", revoked: { type: "equal", value: true } } };
export const Rotated = {
	type: "object",
	props: { keyVersion: "number|integer", reencryptedVersions: "number|integer" }
};

export const EnvironmentCount = named("EnvironmentCount", {
	environment: "string",
	count: "number|integer",
	updated_at: "date|nullable"
});

// Names across two environments: which has each, at which version, and whether the values match (null when the
// caller may not read both, or one is missing). Values themselves never leave the service.
export const Comparison = named("Comparison", {
	environments: listOf("string"),
	rows: listOf({
		type: "object",
		props: {
			name: "string",
			versions: { type: "record", key: "string", value: "number|integer|nullable" },
			same: "boolean|nullable"
		}
	})
});
