// ServiceIdentityMixin: how a service proves who it is (lib/service-identity.ts). `this.identityMeta(action, org)`
// is the ctx.meta that proves this service to one action for one organization; `this.callForOrganization(org,
// action, params)` calls an action as this service acting for an organization without a user (a job's principal),
// with the permissions its module's manifest declares (servicePermissions), audited and limited as the service.
import path from "path";
import type { CallingOptions, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { ConfigError, getConfig } from "../lib/config";
import { manifestOfServiceFile } from "../lib/module";
import type { AuthInfo } from "../lib/permissions";
import { credentialOf, IDENTITY_META, permissionsBinding, signCall } from "../lib/service-identity";

// `this` of a service that has the mixin: its methods, the credential and the permissions read once.
export interface ServiceIdentity extends Service {
	identityCredential: string;
	declaredPermissions?: string[];
	__filename?: string;
	identityMeta(action: string, organizationId?: string, extra?: string): Record<string, string>;
	principalPermissions(): string[];
	callForOrganization(
		organizationId: string,
		action: string,
		params: unknown,
		opts?: CallingOptions
	): Promise<unknown>;
}

export const ServiceIdentityMixin: Partial<ServiceSchema> = {
	methods: {
		identityMeta(this: ServiceIdentity, action: string, organizationId = "", extra = ""): Record<string, string> {
			return { [IDENTITY_META]: signCall(this.name, this.identityCredential, action, organizationId, extra) };
		},

		// The permissions its module declares for acting without a user; read once the service file is known.
		principalPermissions(this: ServiceIdentity): string[] {
			if (!this.declaredPermissions) {
				const file: string | undefined = this.__filename;
				const manifest = file ? manifestOfServiceFile(path.dirname(path.dirname(file)), file) : undefined;
				this.declaredPermissions = manifest?.servicePermissions ?? [];
			}
			return this.declaredPermissions;
		},

		callForOrganization(
			this: ServiceIdentity,
			organizationId: string,
			action: string,
			params: unknown,
			opts: CallingOptions = {}
		) {
			const permissions: string[] = this.principalPermissions();
			const auth: AuthInfo = {
				kind: "service",
				service: this.name,
				organizationId,
				boundOrganizationId: organizationId,
				permissions
			};
			const proof = this.identityMeta(action, organizationId, permissionsBinding(permissions));
			return this.broker.call(action, params, { ...opts, meta: { ...opts.meta, auth, ...proof } });
		}
	},

	created(this: Service & { identityCredential?: string }) {
		const credential = credentialOf(getConfig(), this.name);
		// A service that cannot prove itself would fail every call it makes: refuse to start instead.
		if (!credential)
			throw new ConfigError(
				"SERVICE_CREDENTIALS",
				`holds no credential for service ${this.name}, which runs on this node (npm run service-credential -- ${this.name})`
			);
		this.identityCredential = credential;
	}
};
