// The fixture every DB-backed scenario reads: a registered user (owner of their personal organization), the
// identity the gateway would put in meta (auth.resolve), and one team row in that organization.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";

export const BENCH_JWT_SECRET = "bench-secret-bench-secret-bench-secret-0123";
// What every platform process of the bench is given: cluster nodes need both (TRANSIT_KEY encrypts every packet
// between platform nodes, as in production; the bare baseline pair does not use it).
export const BENCH_SECRETS = { JWT_SECRET: BENCH_JWT_SECRET, TRANSIT_KEY: "bench-transit-key-bench-transit-key-0123" };

export interface Fixture {
	auth: any;
	teamId: string;
}

export async function prepareFixture(broker: ServiceBroker): Promise<Fixture> {
	const tag = crypto.randomBytes(4).toString("hex");
	const reg: any = await broker.call("auth.register", {
		email: `bench-${tag}@example.com`,
		password: "bench-password-123",
		name: `Bench ${tag}`
	});
	const auth = await broker.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
	const team: any = await broker.call(
		"auth-teams.create",
		{ name: `Bench team ${tag}`, description: "benchmark fixture" },
		{ meta: { auth } }
	);
	// One read to prove the call works before timing it.
	const got: any = await broker.call("auth-teams.get", { id: team.id }, { meta: { auth } });
	if (got?.id !== team.id) throw new Error(`auth-teams.get returned ${JSON.stringify(got)}`);
	return { auth, teamId: team.id };
}

export const readTeam = (broker: ServiceBroker, f: Fixture) => () =>
	broker.call("auth-teams.get", { id: f.teamId }, { meta: { auth: f.auth } });
