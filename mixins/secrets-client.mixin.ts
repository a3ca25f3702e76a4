// SecretsClientMixin: how a service gets a credential. `await this.resolveSecret({ organizationId, environment,
// name })` asks the secrets service over the transporter as this service (its grants decide), and keeps the value
// in process memory only (never Redis) until the secret changes: the secrets service announces every change with
// a broadcast event that carries no value. The request carries this service's proof of identity
// (ServiceIdentityMixin): a node that merely claims the service's name is refused.
import type { ServiceSchema } from "../lib/schema";
import { ServiceIdentityMixin } from "./service-identity.mixin";
import type { ServiceIdentity } from "./service-identity.mixin";
import { LocalCacheMixin } from "./local-cache.mixin";
import type { LocalCache } from "../lib/local-cache";

export interface SecretRef {
	organizationId: string;
	environment: string;
	name: string;
	projectId?: string;
}

// What a secret's name and environment look like: the vault's rules, and those of any module that stores a reference.
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_./-]{0,199}$/;
export const SECRET_ENVIRONMENT = /^[a-z][a-z0-9-]{0,39}$/;

type SecretsClient = ServiceIdentity & { secretCache: LocalCache<{ ref: SecretRef; value: string }> };

const TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 10_000;
const keyOf = (r: SecretRef) => `${r.organizationId}|${r.projectId ?? ""}|${r.environment}|${r.name}`;
// What a resolve token binds besides service and organization: the one secret it may read.
export const resolveBinding = (r: Omit<SecretRef, "organizationId">) =>
	`${r.projectId ?? ""}|${r.environment}|${r.name}`;

export const SecretsClientMixin: Partial<ServiceSchema> = {
	mixins: [
		ServiceIdentityMixin,
		LocalCacheMixin<
			{ ref: SecretRef; value: string },
			{ organizationId: string; environment?: string; name?: string }
		>("secretCache", {
			max: MAX_ENTRIES,
			ttlMs: TTL_MS,
			// A change we cannot pin to one name (grant, rotation, import) drops the organization's entries.
			dropOn: {
				"secrets.changed":
					({ organizationId, environment, name }) =>
					({ ref: r }) =>
						r.organizationId === organizationId &&
						(!name || (r.name === name && r.environment === environment))
			}
		})
	],

	methods: {
		async resolveSecret(this: SecretsClient, ref: SecretRef): Promise<string> {
			const key = keyOf(ref);
			const hit = this.secretCache.get(key);
			if (hit) return hit.value;
			const meta = this.identityMeta("secrets.resolve", ref.organizationId, resolveBinding(ref));
			const res: { value: string } = await this.broker.call("secrets.resolve", ref, {
				caller: this.fullName,
				meta
			});
			this.secretCache.set(key, { ref, value: res.value });
			return res.value;
		},

		// A value this service has just stored itself (secrets.store): read back at once, before the change's
		// broadcast drops the old one.
		rememberSecret(this: SecretsClient, ref: SecretRef, value: string | null) {
			if (value === null) this.secretCache.delete(keyOf(ref));
			else this.secretCache.set(keyOf(ref), { ref, value });
		},

		forgetSecrets(this: SecretsClient) {
			this.secretCache.clear();
		}
	}
};
