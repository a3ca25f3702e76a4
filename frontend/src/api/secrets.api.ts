// secrets module: /api/secrets. Listings and metadata never carry values; a value travels only in the answer to
// `reveal` (and in an export), and every such read is written to the organization's audit chain.
import { api, download, type Answer, type Schema } from "@/lib/api";

export type SecretMeta = Schema<"SecretMeta">;
export type SecretVersion = Schema<"SecretVersion">;
export type SecretDetail = Answer<"secrets.get">;
export type Revealed = Schema<"Revealed">;

export type GrantPermission = "read" | "write";
export type GranteeType = "user" | "team" | "service";

export type Grant = Schema<"Grant">;

export type NewGrant = ({ secretId: string } | { environment: string; namePrefix: string }) & {
	permission: GrantPermission;
	granteeType: GranteeType;
	granteeId: string;
	expiresAt?: string;
};

export type AuditEntry = Schema<"AuditEntry">;
export type AuditVerification = Schema<"AuditVerification">;
export type VaultSettings = Schema<"VaultSettings">;
export type ImportResult = Schema<"ImportResult">;
export type EnvironmentCount = Schema<"EnvironmentCount">;
export type Comparison = Schema<"Comparison">;
export type AuditOutcome = "success" | "denied" | "error";
export type AuditQuery = {
	action?: string;
	outcome?: AuditOutcome;
	search?: string;
};

const secret = (id: string) => `/secrets/${encodeURIComponent(id)}`;

export const secretsApi = {
	list: (query: { environment?: string; search?: string; includeDeleted?: boolean } = {}) =>
		api.get<SecretMeta[]>("/secrets", { ...query, includeDeleted: query.includeDeleted || undefined }),
	get: (id: string) => api.get<SecretDetail>(secret(id)),
	create: (body: { environment: string; name: string; value: string; description?: string; tags?: string[] }) =>
		api.post<SecretMeta>("/secrets", body),
	update: (id: string, body: { value?: string; cas?: number; description?: string; tags?: string[] }) =>
		api.patch<SecretMeta>(secret(id), body),
	reveal: (id: string, version?: number) => api.post<Revealed>(`${secret(id)}/reveal`, version ? { version } : {}),
	rollback: (id: string, version: number) =>
		api.post<Answer<"secrets.rollback">>(`${secret(id)}/rollback`, { version }),
	remove: (id: string) => api.delete<Answer<"secrets.remove">>(secret(id)),
	restore: (id: string) => api.post<SecretMeta>(`${secret(id)}/restore`),
	destroyVersion: (id: string, version: number) =>
		api.delete<Answer<"secrets.destroyVersion">>(`${secret(id)}/versions/${version}`),

	grants: (secretId?: string) => api.get<Grant[]>("/secrets/grants", { secretId }),
	grant: (body: NewGrant) => api.post<Grant>("/secrets/grants", body),
	revokeGrant: (grantId: string) =>
		api.delete<Answer<"secrets.revokeGrant">>(`/secrets/grants/${encodeURIComponent(grantId)}`),

	audit: (query: AuditQuery & { limit?: number; before?: number } = {}) =>
		api.get<AuditEntry[]>("/secrets/audit", query),
	exportAudit: (query: AuditQuery = {}) => download("/secrets/audit/export", query, "secrets-audit.csv"),
	environments: () => api.get<EnvironmentCount[]>("/secrets/environments"),
	compare: (from: string, to: string) => api.get<Comparison>("/secrets/compare", { from, to }),
	verifyAudit: () => api.post<AuditVerification>("/secrets/audit/verify"),

	settings: () => api.get<VaultSettings>("/secrets/settings"),
	configure: (body: { environments?: string[]; maxVersions?: number }) =>
		api.patch<VaultSettings>("/secrets/settings", body),
	rotateDataKey: () => api.post<Answer<"secrets.rotateDataKey">>("/secrets/rotate-data-key"),

	importEnv: (body: { environment: string; content: string; overwrite?: boolean }) =>
		api.post<ImportResult>("/secrets/import", body),
	exportEnv: (environment: string) => api.post<Answer<"secrets.export">>("/secrets/export", { environment })
};
