// What the embeddings specs share: the module's services and an organization with a caller per role.
import type { ServiceBroker } from "moleculer";
import { permissionTable } from "../../lib/authz";
import type { AuthInfo, Role } from "../../lib/permissions";

export const EMBEDDINGS_SERVICES = [
	"services/auth/auth.service.ts",
	"services/embeddings/embeddings.service.ts",
	"services/embeddings/models.service.ts",
	"services/embeddings/collections.service.ts",
	"services/embeddings/documents.service.ts",
	"services/embeddings/jobs.service.ts"
];

export async function registerOrg(broker: ServiceBroker, email: string) {
	const user: any = await broker.call("auth.register", { email, password: "correct horse battery", name: "o" });
	const auth = (role: Role): AuthInfo => ({
		kind: "session",
		userId: user.user.id,
		organizationId: user.organization.id,
		role,
		permissions: [...permissionTable().byRole[role]]
	});
	return auth;
}
