// secrets module: /api/secrets. Listings and metadata never carry values; a value travels only in the answer to
// `reveal` (and in an export), and every such read is written to the organization's audit chain.
import { api } from "@/lib/api";

export interface SecretMeta {
	id: string;
	organization_id: string;
	project_id: string | null;
	environment: string;
	name: string;
	description: string;
	tags: string[];
	current_version: number;
	created_by: string | null;
	created_at: string;
	updated_at: string;
	deleted_at: string | null;
}

export interface SecretVersion {
	version: number;
	created_by: string | null;
	created_at: string;
	destroyed_at: string | null;
	key_version: number;
}

export interface SecretDetail extends SecretMeta {
	versions: SecretVersion[];
}

export interface Revealed {
	id: string;
	name: string;
	environment: string;
	version: number;
	value: string;
}

export type GrantPermission = "read" | "write";
export type GranteeType = "user" | "team" | "service";

export interface Grant {
	id: string;
	organization_id: string;
	// Either one secret, or every secret whose name starts with name_prefix in environment.
	secret_id: string | null;
	environment: string | null;
	name_prefix: string | null;
	permission: GrantPermission;
	grantee_type: GranteeType;
	grantee_id: string;
	expires_at: string | null;
	created_by: string | null;
	created_at: string;
}

export type NewGrant = (
	| { secretId: string }
	| { environment: string; namePrefix: string }
) & { permission: GrantPermission; granteeType: GranteeType; granteeId: string; expiresAt?: string };

export interface AuditEntry {
	seq: number | string;
	actor_type: "user" | "service" | "system";
	actor_id: string | null;
	action: string;
	target: string | null;
	outcome: "success" | "denied" | "error";
	request_id: string | null;
	details: Record<string, unknown> | null;
	created_at: string;
}

export interface AuditVerification {
	ok: boolean;
	entries: number;
	firstBad?: { seq: number; problem: "altered" | "removed" };
}

export interface VaultSettings {
	environments: string[];
	maxVersions: number;
	keyVersion: number | null;
	rotatedAt: string | null;
}

export interface ImportResult {
	created: string[];
	updated: string[];
	skipped: string[];
}

const secret = (id: string) => `/secrets/${encodeURIComponent(id)}`;

export const secretsApi = {
	list: (query: { environment?: string; search?: string; includeDeleted?: boolean } = {}) =>
		api.get<SecretMeta[]>("/secrets", { ...query, includeDeleted: query.includeDeleted || undefined }),
	get: (id: string) => api.get<SecretDetail>(secret(id)),
	create: (body: { environment: string; name: string; value: string; description?: string; tags?: string[] }) => api.post<SecretMeta>("/secrets", body),
	update: (id: string, body: { value?: string; cas?: number; description?: string; tags?: string[] }) => api.patch<SecretMeta>(secret(id), body),
	reveal: (id: string, version?: number) => api.post<Revealed>(`${secret(id)}/reveal`, version ? { version } : {}),
	rollback: (id: string, version: number) => api.post<SecretMeta & { rolledBackTo: number }>(`${secret(id)}/rollback`, { version }),
	remove: (id: string) => api.delete<SecretMeta & { deleted: true }>(secret(id)),
	restore: (id: string) => api.post<SecretMeta>(`${secret(id)}/restore`),
	destroyVersion: (id: string, version: number) => api.delete<SecretMeta & { destroyedVersion: number }>(`${secret(id)}/versions/${version}`),

	grants: (secretId?: string) => api.get<Grant[]>("/secrets/grants", { secretId }),
	grant: (body: NewGrant) => api.post<Grant>("/secrets/grants", body),
	revokeGrant: (grantId: string) => api.delete<{ id: string; revoked: true }>(`/secrets/grants/${encodeURIComponent(grantId)}`),

	audit: (query: { limit?: number; before?: number } = {}) => api.get<AuditEntry[]>("/secrets/audit", query),
	verifyAudit: () => api.post<AuditVerification>("/secrets/audit/verify"),

	settings: () => api.get<VaultSettings>("/secrets/settings"),
	configure: (body: { environments?: string[]; maxVersions?: number }) => api.patch<{ environments: string[]; maxVersions: number }>("/secrets/settings", body),
	rotateDataKey: () => api.post<{ keyVersion: number; reencryptedVersions: number }>("/secrets/rotate-data-key"),

	importEnv: (body: { environment: string; content: string; overwrite?: boolean }) => api.post<ImportResult>("/secrets/import", body),
	exportEnv: (environment: string) => api.post<{ environment: string; count: number; content: string }>("/secrets/export", { environment })
};
