// The secrets service's shared shapes: parameter rules, the vault row, and what its methods see as `this`.
import type { OrgSettingsMethods } from "../../mixins/org-settings.mixin";
import { Errors } from "moleculer";
import type { Context, Service } from "moleculer";
import { TenantSql } from "../../lib/db/tenant";
import type { AuthInfo } from "../../lib/permissions";
import type { ChangeAction } from "../../lib/live";
import { AuditedOptions, AuditMethods } from "../../mixins/audit.mixin";
import { IdentityAuthorityMethods } from "../../mixins/identity-authority.mixin";
import { SECRET_ENVIRONMENT, SECRET_NAME } from "../../mixins/secrets-client.mixin";
import { DecryptError, MasterKeys } from "./crypto";
import * as R from "./secrets.responses";

export const MAX_VALUE = 65_536;
export const name = {
	type: "string",
	pattern: SECRET_NAME,
	messages: { stringPattern: "must start with a letter or _ and use letters, digits, _ . / -" }
};
export const environment = {
	type: "string",
	pattern: SECRET_ENVIRONMENT,
	messages: { stringPattern: "must be lowercase letters, digits and -" }
};
export const value = { type: "string", max: MAX_VALUE };
export const id = { type: "string" };
export const tags = { type: "array", items: { type: "string", max: 50 }, max: 20, optional: true };

// What a listing shows: names and metadata (the SecretMeta response), never values or ciphertext.
export const META_FIELDS = Object.keys((R.SecretMeta as { props: Record<string, unknown> }).props);
export const META = META_FIELDS.map(f => `s.${f}`).join(", ");

export interface Vault {
	organization_id: string;
	key_version: number;
	wrapped_key: Buffer;
	kek_id: string;
	environments: string[];
	max_versions: number;
}

export type Need = "read" | "write";

// Tampered, moved or wrongly keyed ciphertext is an integrity failure with a name, never garbage.
export function decrypting<T>(what: string, fn: () => T): T {
	try {
		return fn();
	} catch (err) {
		if (err instanceof DecryptError)
			throw new Errors.MoleculerError(`${what} does not decrypt: ${err.message}`, 500, "DECRYPT_FAILED");
		throw err;
	}
}

export type Access = (secret: { environment: string; name: string; id?: string }, need: Need) => Promise<void>;
export type Op<T> = (t: TenantSql, vault: Vault, access: Access) => Promise<T>;
export type Grantees = [string, string][] | null;

// What the service's methods see as `this`: its keys, its methods and its mixins'.
export interface SecretsThis extends Service, AuditMethods, IdentityAuthorityMethods, OrgSettingsMethods {
	keys: MasterKeys;
	meta(secret: any): Record<string, unknown>;
	announce(result: any, ctx: Context, action: ChangeAction): void;
	assertEnvironment(vault: Vault, env: string): void;
	assertGrantee(ctx: Context, type: string, granteeId: string): Promise<void>;
	findSecret(t: TenantSql, secretId: string, includeDeleted?: boolean, lock?: boolean): Promise<any>;
	dataKey(vault: Vault): Buffer;
	readValue(t: TenantSql, vault: Vault, secret: any, version: number): Promise<string>;
	writeVersion(t: TenantSql, vault: Vault, secret: any, plaintext: string): Promise<number>;
	hasGrant(t: TenantSql, secret: any, need: Need, grantees: [string, string][]): Promise<boolean>;
	grantees(ctx: Context, auth: AuthInfo): Promise<Grantees>;
	accessChecker(t: TenantSql, grantees: Grantees): Access;
	lockVault(t: TenantSql): Promise<Vault>;
	audited<T>(
		ctx: Context,
		action: string,
		target: string | null,
		op: Op<T>,
		internal?: AuditedOptions<T>["internal"]
	): Promise<T>;
	checkMasterKey(): Promise<void>;
}
