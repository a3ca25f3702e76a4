// No stale prompts across replicas: two prompts replicas in separate processes over RabbitMQ, each keeping what it
// resolved in its own memory. A label moved or a version published through one is rendered by the other within a
// second (polled, calls pinned to a replica with `nodeID`). An experiment's assignment needs no shared state: both
// replicas put a subject in the same variant.
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith } from "../helpers/infra";
import { startTestCluster, type ClusterNode, type TestCluster } from "../helpers/cluster";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["postgres", "rabbitmq"])("prompts caches across two replicas", () => {
	let cluster: TestCluster;
	let r1: ClusterNode, r2: ClusterNode;
	let caller: ServiceBroker;
	let admin: AuthInfo;

	const render = (node: ClusterNode) =>
		caller.call<any, any>("prompts.render", { name: "greeting" }, { ...as(admin), nodeID: node.nodeID });

	beforeAll(async () => {
		cluster = await startTestCluster("prompts");
		const auth = cluster.start("auth", "auth");
		r1 = cluster.start("prompts-1", "prompts");
		r2 = cluster.start("prompts-2", "prompts");
		await Promise.all([auth, r1, r2].map(n => n.ready));
		caller = await cluster.caller(["auth", "prompts"]);
		await cluster.servedBy("prompts.render", [r1, r2]);
		// Each replica knows the other listens to prompts.changed (a broadcast reaches only the nodes the sender
		// knows of).
		const both = JSON.stringify([r1.nodeID, r2.nodeID].sort());
		for (const node of [r1, r2])
			await waitUntil(
				`${node.nodeID} knows both listeners of prompts.changed`,
				async () => {
					const events: any[] = await caller.call(
						"$node.events",
						{ onlyLocal: false, skipInternal: true, withEndpoints: true },
						{ nodeID: node.nodeID }
					);
					const changed = events.find(e => e.name === "prompts.changed");
					return JSON.stringify((changed?.endpoints ?? []).map((ep: any) => ep.nodeID).sort());
				},
				ids => ids === both
			);
		admin = await cluster.register("replicas@example.com");
	}, 90_000);

	afterAll(() => cluster?.stop());

	test("each replica keeps what it resolved: a label changed behind the platform's back is not seen", async () => {
		// Written straight to the tables, so no broadcast is ever sent for this template.
		const sql = new pg.Client({ connectionString: cluster.db.url });
		await sql.connect();
		const org = admin.organizationId;
		const t = (
			await sql.query("INSERT INTO prompts_templates (organization_id, name) VALUES ($1, 'probe') RETURNING id", [
				org
			])
		).rows[0].id;
		const version = async (n: number) =>
			(
				await sql.query(
					"INSERT INTO prompts_versions (template_id, number, messages) VALUES ($1, $2, $3) RETURNING id",
					[t, n, JSON.stringify([{ role: "user", content: `probe ${n}` }])]
				)
			).rows[0].id;
		const [one, two] = [await version(1), await version(2)];
		await sql.query("INSERT INTO prompts_labels (template_id, name, version_id) VALUES ($1, 'production', $2)", [
			t,
			one
		]);
		const probe = (node: ClusterNode) =>
			caller.call<any, any>("prompts.render", { name: "probe" }, { ...as(admin), nodeID: node.nodeID });
		expect((await probe(r2)).messages[0].content).toBe("probe 1");
		await sql.query("UPDATE prompts_labels SET version_id = $1 WHERE template_id = $2", [two, t]);
		await sql.end();
		expect((await probe(r2)).messages[0].content).toBe("probe 1");
		// Replica 1 had not resolved it: it reads the table.
		expect((await probe(r1)).messages[0].content).toBe("probe 2");
	});

	test("a label moved on one replica is rendered by the other within a second", async () => {
		const t: any = await caller.call(
			"prompts.create",
			{ name: "greeting", messages: [{ role: "user", content: "v1" }], label: "production" },
			{ ...as(admin), nodeID: r1.nodeID }
		);
		const id = t.template.id;
		// Both replicas have resolved (and cached) production -> v1.
		expect((await render(r1)).messages[0].content).toBe("v1");
		expect((await render(r2)).messages[0].content).toBe("v1");

		await caller.call(
			"prompts.publish",
			{ id, messages: [{ role: "user", content: "v2" }] },
			{ ...as(admin), nodeID: r1.nodeID }
		);

		// The platform's move on replica 1 reaches replica 2 within a second; a rollback on 2 reaches 1 the same way.
		await caller.call(
			"prompts.moveLabel",
			{ id, label: "production", version: 2 },
			{ ...as(admin), nodeID: r1.nodeID }
		);
		await waitUntil(
			"replica 2 renders v2",
			() => render(r2),
			r => r.messages[0].content === "v2",
			1000,
			20
		);
		await caller.call("prompts.rollback", { id }, { ...as(admin), nodeID: r2.nodeID });
		await waitUntil(
			"replica 1 renders v1 again",
			() => render(r1),
			r => r.messages[0].content === "v1",
			1000,
			20
		);
		await caller.call(
			"prompts.publish",
			{ id, messages: [{ role: "user", content: "v3" }], label: "production" },
			{ ...as(admin), nodeID: r2.nodeID }
		);
		await waitUntil(
			"replica 1 renders v3",
			() => render(r1),
			r => r.messages[0].content === "v3",
			1000,
			20
		);
	});

	test("an experiment started on one replica splits renders on both, each subject in the same variant", async () => {
		const on = (node: ClusterNode) => ({ ...as(admin), nodeID: node.nodeID });
		const t: any = await caller.call(
			"prompts.create",
			{ name: "split", messages: [{ role: "user", content: "v1" }], label: "production" },
			on(r1)
		);
		await caller.call(
			"prompts.publish",
			{ id: t.template.id, messages: [{ role: "user", content: "v2" }] },
			on(r1)
		);
		const split = (node: ClusterNode, subject: string) =>
			caller.call<any, any>("prompts.render", { name: "split", subject }, on(node));
		// Both replicas have resolved production without an experiment.
		expect((await split(r1, "s")).experiment_id).toBeNull();
		expect((await split(r2, "s")).experiment_id).toBeNull();
		const x: any = await caller.call(
			"prompts-experiments.start",
			{
				template_id: t.template.id,
				name: "split",
				metric: "success",
				sticky_by: "session",
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			on(r1)
		);
		await waitUntil(
			"replica 2 renders in the experiment",
			() => split(r2, "s"),
			r => r.experiment_id === x.experiment.id,
			1000,
			20
		);
		const seen = new Set<string>();
		for (let i = 0; i < 30; i++) {
			const [one, two] = [await split(r1, `session-${i}`), await split(r2, `session-${i}`)];
			expect(one.experiment_id).toBe(x.experiment.id);
			expect(two.variant_id).toBe(one.variant_id);
			expect(two.messages).toEqual(one.messages);
			seen.add(one.variant_id);
		}
		expect(seen.size).toBe(2);
	});
});
