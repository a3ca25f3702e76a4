// SecretsClientMixin: how a service gets a credential. `await this.resolveSecret({ organizationId, environment,
// name })` asks the secrets service over the transporter as this service (its grants decide), and keeps the value
// in process memory only (never Redis) until the secret changes: the secrets service announces every change with
// a broadcast event that carries no value. The request carries this service's proof of identity
// (ServiceIdentityMixin): a node that merely claims the service's name is refused.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { ServiceIdentityMixin } from "./service-identity.mixin";

export interface SecretRef {
	organizationId: string;
	environment: string;
	name: string;
	projectId?: string;
}

const TTL_MS = 5 * 60_000;
const keyOf = (r: SecretRef) => `${r.organizationId}|${r.projectId ?? ""}|${r.environment}|${r.name}`;
// What a resolve token binds besides service and organization: the one secret it may read.
export const resolveBinding = (r: Omit<SecretRef, "organizationId">) =>
	`${r.projectId ?? ""}|${r.environment}|${r.name}`;

export const SecretsClientMixin: Partial<ServiceSchema> = {
	mixins: [ServiceIdentityMixin],

	events: {
		"secrets.changed"(this: any, ctx: Context<{ organizationId: string; environment?: string; name?: string }>) {
			const { organizationId, environment, name } = ctx.params;
			for (const [key, entry] of this.secretCache as Map<string, { ref: SecretRef }>) {
				const r = entry.ref;
				// A change we cannot pin to one name (grant, rotation, import) drops the organization's entries.
				if (r.organizationId === organizationId && (!name || (r.name === name && r.environment === environment))) this.secretCache.delete(key);
			}
		}
	},

	methods: {
		async resolveSecret(this: any, ref: SecretRef): Promise<string> {
			const key = keyOf(ref);
			const hit = this.secretCache.get(key);
			if (hit && hit.expires > Date.now()) return hit.value;
			const meta = this.identityMeta("secrets.resolve", ref.organizationId, resolveBinding(ref));
			const res: { value: string } = await this.broker.call("secrets.resolve", ref, { caller: this.fullName, meta });
			this.secretCache.set(key, { ref, value: res.value, expires: Date.now() + TTL_MS });
			return res.value;
		},

		forgetSecrets(this: any) {
			this.secretCache.clear();
		}
	},

	created(this: any) {
		this.secretCache = new Map();
	}
};
