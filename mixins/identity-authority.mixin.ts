// IdentityAuthorityMixin: the service that holds the operator's root, SERVICE_IDENTITY_KEY (lib/service-identity.ts),
// checks which service a token proves. `this.proveService(token, action, organizationId, binding)` returns the
// service or throws AuditDenied (an audited refusal, AuditMixin); the internal `verifyIdentity` action answers the
// same question for nodes that do not hold the root (lib/authz.ts). Each token is accepted once per process.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { ConfigError, getConfig } from "../lib/config";
import { forbidden } from "../lib/errors";
import { IdentityError, IdentityVerifier, verifierFor } from "../lib/service-identity";
import { AuditDenied } from "./audit.mixin";

export interface IdentityAuthorityMethods {
	proveService(token: unknown, action: string, organizationId?: string, binding?: string): string;
}

type This = Service & IdentityAuthorityMethods & { identity: IdentityVerifier };
interface VerifyParams {
	token: string;
	action: string;
	organizationId?: string;
	binding?: string;
}

// The service a token proves for this action, organization and binding, or AuditDenied naming why not.
function proveService(this: This, token: unknown, action: string, organizationId?: string, binding?: string): string {
	try {
		return this.identity.verify(token, action, organizationId ?? "", binding ?? "");
	} catch (err) {
		if (err instanceof IdentityError) throw new AuditDenied(`${err.message} (${err.claimed})`);
		throw err;
	}
}

export const IdentityAuthorityMixin: Partial<ServiceSchema> = {
	actions: {
		verifyIdentity: {
			visibility: "public",
			params: {
				$$strict: true,
				token: { type: "string", max: 300 },
				action: { type: "string", max: 200 },
				organizationId: { type: "string", max: 100, optional: true },
				binding: { type: "string", max: 2000, optional: true }
			},
			handler(this: This, ctx: Context<VerifyParams>) {
				const p = ctx.params;
				try {
					return { service: this.proveService(p.token, p.action, p.organizationId, p.binding) };
				} catch (err) {
					if (err instanceof AuditDenied) throw forbidden(err.message);
					throw err;
				}
			}
		}
	},

	methods: { proveService },

	created(this: Service) {
		const config = getConfig();
		// The authority tells services apart by the root: without it, it could tell no service from another.
		if (!config.serviceIdentityKey)
			throw new ConfigError(
				"SERVICE_IDENTITY_KEY",
				`is required on a node that runs ${this.name} (32+ characters)`
			);
		(this as This).identity = verifierFor(config.serviceIdentityKey);
	}
};
