// Setup the planning and execution specs share: an organization's owner as the gateway passes it after sign-in, and
// plans approved (and run to their end) as a person would.
import type { ServiceBroker } from "moleculer";
import { permissionTable } from "../../lib/authz";
import type { AuthInfo } from "../../lib/permissions";
import { waitUntil } from "./wait";

type Call = (action: string, params: object) => Promise<any>;

// A new user with an organization of their own, acting as its owner.
export async function registerOwner(broker: ServiceBroker, email: string): Promise<AuthInfo> {
	const user: any = await broker.call("auth.register", { email, password: "correct horse battery", name: "o" });
	return {
		kind: "session",
		userId: user.user.id,
		organizationId: user.organization.id,
		role: "owner",
		permissions: [...permissionTable().byRole.owner]
	};
}

export async function approvedPlan(call: Call, title: string, steps: object[]) {
	const plan = await call("planning-plans.create", { title, steps });
	await call("planning-plans.approve", { id: plan.id, revision: plan.revision });
	return plan;
}

// An approved plan's run, once it has completed or failed: { run, steps }.
export async function runPlan(call: Call, title: string, steps: object[]) {
	const plan = await approvedPlan(call, title, steps);
	const run = await call("execution-runs.start", { planId: plan.id });
	return waitUntil(
		`run of ${title} to end`,
		() => call("execution-runs.get", { id: run.id }),
		(d: any) => ["completed", "failed"].includes(d.run.status),
		60_000
	);
}
