// Errors in the words the UI uses: a duplicate names the entity as users know it and the fields by their labels, a
// validation error names the field by the form's label (declared once, as the rule's `label`), never a table or key.
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { AI_STACK } from "../helpers/ai";
import { formatError } from "../../services/gateway/errors";
import { readableFieldMessage } from "../../frontend/src/lib/field-message";

describeWith(["postgres"])("error words (AI module, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let auth: any;
	const call = (action: string, params: any) => broker.call<any, any>(action, params, as(auth));
	// What the UI shows for a failed call: the gateway's error shape, each field's message as the form shows it, and
	// the message (capitalized as the UI's ApiError does).
	const shown = async (pending: Promise<unknown>) => {
		const err = await pending.then(
			() => undefined,
			e => e
		);
		expect(err).toBeDefined();
		const { status, body } = formatError(err);
		const fields: Record<string, string> = {};
		for (const f of body.error.fields ?? []) fields[f.field] ??= readableFieldMessage(f.field, f.message);
		const text = Object.values(fields).join(" ") || body.error.message;
		return { status, fields, message: text.charAt(0).toUpperCase() + text.slice(1) };
	};

	beforeAll(async () => {
		db = await createTestDatabase();
		const t = await createTestBroker(
			{ DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" },
			AI_STACK
		);
		broker = t.broker;
		stop = t.stop;
		const owner: any = await broker.call("auth.register", {
			email: "words@example.com",
			password: "correct horse battery",
			name: "Words"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
		const provider = await call("ai-providers.create", { name: "local", base_url: "http://127.0.0.1:9/v1" });
		await call("ai-deployments.create", { provider_id: provider.id, name: "gpt-4o", provider_model: "gpt-4o" });
	}, 60_000);
	afterAll(async () => {
		await stop?.();
		await db?.drop();
	});

	test("a second routing rule for a model: 409 naming the routing rule and the model, not ai_routing_rule", async () => {
		await call("ai-routing-rules.create", { model: "gpt-4o", strategy: "priority" });
		const err = await shown(call("ai-routing-rules.create", { model: "gpt-4o", strategy: "cost" }));
		expect(err.status).toBe(409);
		expect(err.message).toBe("A routing rule with this model already exists");
		expect(err.fields).toEqual({ model: "a routing rule with this model already exists" });
		expect(err.message).not.toMatch(/ai_|_rule/i);

		await call("ai-routing-rules.create", { model: "gpt-4o", tag: "batch", strategy: "priority" });
		const tagged = await shown(
			call("ai-routing-rules.create", { model: "gpt-4o", tag: "batch", strategy: "cost" })
		);
		expect(tagged.message).toBe("A routing rule with this model and tag already exists");
		// A deployment's name is labelled "Model name" in its form.
		const provider = (await call("ai-providers.find", {}))[0];
		const dup = await shown(
			call("ai-deployments.create", { provider_id: provider.id, name: "gpt-4o", provider_model: "gpt-4o" })
		);
		expect(dup.message).toMatch(/^A deployment with this model name/);
	});

	test("a cache lifetime of 0 is refused naming the form's field, Cache lifetime, not cache ttl seconds", async () => {
		const err = await shown(call("ai.configure", { cacheTtlSeconds: 0 }));
		expect(err.status).toBe(422);
		expect(err.fields.cacheTtlSeconds).toBe("Cache lifetime (seconds) must be at least 1.");
		expect(err.message).toBe("Cache lifetime (seconds) must be at least 1.");
		// An unknown key is named as sent (a label of another field must not stand in for it).
		const strict = await shown(call("ai.configure", { cacheTtl: 5 }));
		expect(strict.fields).toEqual({ cacheTtl: "Cache ttl is not allowed." });
	});
});
