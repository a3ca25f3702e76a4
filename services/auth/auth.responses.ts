// What the auth module's actions answer (their `response`): OpenAPI and the UI's generated types come from here.
import { extend, listOf, named } from "../../lib/response";
import { ROLES } from "../../lib/permissions";

export { listOf };

const role = { type: "enum", values: [...ROLES] };

export const User = named("User", { id: "uuid", email: "email", name: "string", createdAt: "date" });

export const Tokens = named("Tokens", { accessToken: "string", refreshToken: "string", expiresIn: "number|integer" });

export const Registered = extend(Tokens, {
	user: User,
	organization: { type: "object", props: { id: "uuid", name: "string", slug: "string", role } }
});

export const LoggedIn = extend(Tokens, { user: User, defaultOrganizationId: "uuid|nullable" });

export const Me = named("Me", {
	user: User,
	organizations: listOf({
		type: "object",
		props: { id: "uuid", name: "string", slug: "string", personal: "boolean", role }
	}),
	organizationId: "uuid|nullable",
	role: { ...role, nullable: true },
	permissions: listOf("string")
});

export const Ok = { type: "object", props: { ok: { type: "equal", value: true } } };

export const ApiKey = named("ApiKey", {
	id: "uuid",
	organization_id: "uuid",
	user_id: "uuid",
	// The key it was made with (a key made with a key never exceeds it), or null.
	parent_id: "uuid|nullable",
	name: "string",
	prefix: "string",
	role: { ...role, nullable: true },
	expires_at: "date|nullable",
	last_used_at: "date|nullable",
	revoked_at: "date|nullable",
	created_at: "date"
});

// The key itself is in this answer only: it is never shown again.
export const NewApiKey = extend(ApiKey, { key: "string" });

export const Invitation = named("Invitation", {
	id: "uuid",
	organization_id: "uuid",
	email: "email",
	role,
	created_by: "uuid|nullable",
	// Who invited, by name, for the list.
	invited_by: "string|nullable",
	expires_at: "date",
	expired: "boolean",
	created_at: "date"
});

// The token is in this answer only; `path` is the page that accepts it (the UI makes it a full link).
export const NewInvitation = extend(Invitation, { token: "string", path: "string" });

// What someone holding the link sees before accepting: no other member's data.
export const InvitationPreview = named("InvitationPreview", {
	organization: { type: "object", props: { id: "uuid", name: "string" } },
	email: "email",
	role,
	invited_by: "string|nullable",
	expires_at: "date"
});

export const Joined = named("Joined", { organizationId: "uuid", role });

export const ResetLink = named("ResetLink", { email: "email", token: "string", path: "string", expiresAt: "date" });
