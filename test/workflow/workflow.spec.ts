// workflow: CRUD in an organization, and the event its create publishes. Permissions, tenancy, error shape and
// OpenAPI are checked for every module by test/platform/conformance.spec.ts.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { permissionTable } from "../../lib/authz";
import { getDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["postgres"])("workflow (in-process broker, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker({ DATABASE_URL: db.url }, [
			"services/auth/auth.service.ts",
			"services/workflow/workflow.service.ts"
		]);
		const user: any = await t.broker.call("auth.register", {
			email: "o@example.com",
			password: "correct horse battery",
			name: "o"
		});
		const org = user.organization.id;
		owner = {
			kind: "session",
			userId: user.user.id,
			organizationId: org,
			role: "owner",
			permissions: [...permissionTable().byRole.owner]
		};
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
	});

	test("create, list, update and remove an item; create publishes workflow.item.created", async () => {
		const item: any = await t.broker.call("workflow.create", { name: "First" }, as(owner));
		expect(item).toMatchObject({ name: "First", description: "" });
		const listed: any = await t.broker.call("workflow.list", {}, as(owner));
		expect(listed.rows.map((r: any) => r.id)).toEqual([item.id]);
		expect(
			await t.broker.call("workflow.update", { id: item.id, description: "changed" }, as(owner))
		).toMatchObject({ description: "changed" });
		await expect(t.broker.call("workflow.create", { name: "First" }, as(owner))).rejects.toMatchObject({
			code: 409
		});
		await t.broker.call("workflow.remove", { id: item.id }, as(owner));
		await expect(t.broker.call("workflow.get", { id: item.id }, as(owner))).rejects.toMatchObject({ code: 404 });
		const events = await waitUntil(
			"the created event in the outbox",
			async () =>
				(
					await (
						await getDb()
					).query<{ payload: any }>("SELECT payload FROM outbox WHERE channel = $1", ["workflow.events"])
				).rows,
			rows => rows.length === 1
		);
		expect(events[0].payload).toMatchObject({
			type: "workflow.item.created",
			itemId: item.id,
			organizationId: owner.organizationId
		});
	});
});
