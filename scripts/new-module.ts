// `npm run new-module <name>`: a module from one command — manifest, event types, migration, a service on the
// mixins (tenant CRUD with REST and permissions, an event on create), a UI page, store and API file, and a test.
// Everything else (permissions table, OpenAPI, event topology, compose, the UI's module list, the conformance
// suite) is derived from these files. ROOT (default: this repository) says where to write.
import fs from "fs";
import path from "path";

const RESERVED = ["platform", "api", "lib", "mixins", "scripts", "test", "frontend", "node_modules", "home"];

export function validateName(name: string | undefined, root: string): string | undefined {
	if (!name) return "usage: npm run new-module <name>   (kebab-case, e.g. calendar or learning-paths)";
	if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(name))
		return `"${name}" is not a module name: lowercase kebab-case starting with a letter, e.g. learning-paths`;
	if (RESERVED.includes(name)) return `"${name}" is reserved (${RESERVED.join(", ")})`;
	for (const taken of [`services/${name}`, `migrations/${name}`, `frontend/src/modules/${name}.module.ts`])
		if (fs.existsSync(path.join(root, taken))) return `"${name}" exists already: ${taken}`;
	return undefined;
}

export function moduleFiles(name: string): Record<string, string> {
	const pascal = name.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
	const camel = pascal[0].toLowerCase() + pascal.slice(1);
	const prefix = name.replace(/-/g, "_") + "_";
	const table = `${prefix}items`;
	return {
		[`services/${name}/${name}.module.ts`]: `// ${name}: what the module owns, its permissions and the events it publishes.
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "${name}",
	description: "The organization's ${name} items",
	tablePrefix: "${prefix}",
	permissions: {
		"${name}:read": { description: "See the organization's ${name} items", role: "viewer" },
		"${name}:write": { description: "Create, change and remove ${name} items", role: "member" },
		"${name}:manage": { description: "Manage the ${name} module", role: "admin" }
	},
	publishes: ["${name}.events"],
	consumes: []
});
`,
		[`services/${name}/${name}.events.ts`]: `// ${name}'s durable events (channel ${name}.events).
import type { E } from "../../lib/events/types";

export type ${pascal}Event = E<"${name}.item.created", { itemId: string; name: string }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"${name}.events": ${pascal}Event;
	}
}
`,
		[`migrations/${name}/0001_create_${table}.sql`]: `-- ${name}: the organization's items.
CREATE TABLE ${table} (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	name text NOT NULL,
	description text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, name)
);
`,
		[`services/${name}/${name}.service.ts`]: `// ${name}: the organization's items. CRUD, tenancy and REST come from DbMixin; creating one publishes
// ${name}.item.created through the outbox, in the insert's transaction.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { PgAdapter } from "../../lib/db/pg-adapter";
import type { Queryable } from "../../lib/db";
import { fromDbError } from "../../lib/errors";
import { DbMixin } from "../../mixins/db.mixin";
import { EventsMixin } from "../../mixins/events.mixin";
import "./${name}.events";

type Item = { id: string; name: string; description: string };
interface Self {
	adapter: PgAdapter;
	tenantId(ctx: Context): string;
	withEvents<T>(fn: (tx: Queryable, publish: (type: "${name}.item.created", data: object) => unknown) => Promise<T>): Promise<T>;
	clearCache(): Promise<void>;
	transformDocuments(ctx: Context, params: object, row: Item): Promise<Item>;
}

const ${pascal}Service: ServiceSchema = {
	name: "${name}",
	mixins: [
		DbMixin({
			table: "${table}",
			columns: ["id", "organization_id", "name", "description", "created_at", "updated_at"],
			writable: {
				name: { type: "string", min: 1, max: 200, trim: true },
				description: { type: "string", max: 2000, optional: true }
			},
			tenant: true,
			searchFields: ["name", "description"],
			permissions: { read: "${name}:read", write: "${name}:write" },
			rest: "/${name}",
			entityName: "${name} item"
		}),
		EventsMixin
	],
	actions: {
		create: {
			async handler(this: Self, ctx: Context<{ name: string; description?: string }>) {
				const organizationId = this.tenantId(ctx);
				const row = await this.withEvents(async (tx, publish) => {
					const item: Item = await this.adapter.withTx(tx).insert({ ...ctx.params, organization_id: organizationId });
					publish("${name}.item.created", { organizationId, itemId: item.id, name: item.name });
					return item;
				}).catch((err: unknown) => {
					throw fromDbError(err, "${name} item");
				});
				await this.clearCache();
				return this.transformDocuments(ctx, {}, row);
			}
		}
	}
};
export default ${pascal}Service;
`,
		[`test/${name}/${name}.spec.ts`]: `// ${name}: CRUD in an organization, and the event its create publishes. Permissions, tenancy, error shape and
// OpenAPI are checked for every module by test/platform/conformance.spec.ts.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { permissionTable } from "../../lib/authz";
import { getDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["postgres"])("${name} (in-process broker, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker({ DATABASE_URL: db.url }, ["services/auth/auth.service.ts", "services/${name}/${name}.service.ts"]);
		const user: any = await t.broker.call("auth.register", { email: "o@example.com", password: "correct horse battery", name: "o" });
		const org = user.organization.id;
		owner = { kind: "session", userId: user.user.id, organizationId: org, role: "owner", permissions: [...permissionTable().byRole.owner] };
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
	});

	test("create, list, update and remove an item; create publishes ${name}.item.created", async () => {
		const item: any = await t.broker.call("${name}.create", { name: "First" }, as(owner));
		expect(item).toMatchObject({ name: "First", description: "" });
		const listed: any = await t.broker.call("${name}.list", {}, as(owner));
		expect(listed.rows.map((r: any) => r.id)).toEqual([item.id]);
		expect(await t.broker.call("${name}.update", { id: item.id, description: "changed" }, as(owner))).toMatchObject({ description: "changed" });
		await expect(t.broker.call("${name}.create", { name: "First" }, as(owner))).rejects.toMatchObject({ code: 409 });
		await t.broker.call("${name}.remove", { id: item.id }, as(owner));
		await expect(t.broker.call("${name}.get", { id: item.id }, as(owner))).rejects.toMatchObject({ code: 404 });
		const events = await waitUntil(
			"the created event in the outbox",
			async () => (await (await getDb()).query<{ payload: any }>("SELECT payload FROM outbox WHERE channel = $1", ["${name}.events"])).rows,
			rows => rows.length === 1
		);
		expect(events[0].payload).toMatchObject({ type: "${name}.item.created", itemId: item.id, organizationId: owner.organizationId });
	});
});
`,
		[`frontend/src/api/${name}.api.ts`]: `// ${name} module: /api/${name}, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose ${pascal}Item is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type ${pascal}Item = Schema<"${pascal}Item">;
export type ${pascal}ItemInput = { name?: string; description?: string };

export const ${camel}Api = crud<${pascal}Item, ${pascal}ItemInput>("/${name}");
`,
		[`frontend/src/stores/${name}.ts`]: `// ${name}: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { ${camel}Api } from "@/api/${name}.api";

export const use${pascal}Store = defineStore("${name}", () => {
	const items = useCrud(${camel}Api);
	return { items: items.items, loading: items.loading, error: items.error, load: items.load, create: items.create, remove: items.remove };
});
`,
		[`frontend/src/components/${name}/${pascal}List.vue`]: `<script setup lang="ts">
import type { ${pascal}Item } from "@/api/${name}.api";

defineProps<{ items: ${pascal}Item[] }>();
defineEmits<{ remove: [id: string] }>();
</script>

<template>
	<ul>
		<li v-for="item in items" :key="item.id">
			{{ item.name }}
			<button type="button" @click="$emit('remove', item.id)">Remove</button>
		</li>
	</ul>
</template>
`,
		[`frontend/src/pages/${name}/${pascal}Page.vue`]: `<script setup lang="ts">
import { ref } from "vue";
import ${pascal}List from "@/components/${name}/${pascal}List.vue";
import { use${pascal}Store } from "@/stores/${name}";
import { useLoadOnMount } from "@/lib/use-load";

const store = use${pascal}Store();
const name = ref("");
useLoadOnMount(store.load);

async function add() {
	await store.create({ name: name.value });
	name.value = "";
}
</script>

<template>
	<form @submit.prevent="add">
		<input v-model="name" placeholder="Name" required />
		<button type="submit">Add</button>
	</form>
	<${pascal}List v-if="store.items" :items="store.items" @remove="store.remove" />
</template>
`,
		[`frontend/src/modules/${name}.module.ts`]: `// ${name}: the organization's items.
import type { AppModule } from "./types";

export const ${camel}Module: AppModule = {
	name: "${name}",
	order: 100,
	routes: [
		{
			path: "${name}",
			name: "${name}",
			component: () => import("@/pages/${name}/${pascal}Page.vue"),
			meta: { title: "${pascal}", permission: "${name}:read" }
		}
	],
	nav: [{ route: "${name}", label: "${pascal}", icon: "code", permission: "${name}:read" }]
};
`
	};
}

export function createModule(name: string, root: string): string[] {
	const refused = validateName(name, root);
	if (refused) throw new Error(refused);
	const files = moduleFiles(name);
	// Nothing half-written: every target is checked before the first write.
	for (const rel of Object.keys(files))
		if (fs.existsSync(path.join(root, rel))) throw new Error(`"${name}" exists already: ${rel}`);
	for (const [rel, text] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
		fs.writeFileSync(path.join(root, rel), text);
	}
	return Object.keys(files);
}

// The written files in the project's Prettier style (the templates cannot know where a long name breaks a line);
// files Prettier ignores or has no parser for (SQL) are left as written.
export async function formatFiles(root: string, files: string[]): Promise<void> {
	const prettier = await import("prettier");
	const ignorePath = path.join(root, ".prettierignore");
	for (const rel of files) {
		const file = path.join(root, rel);
		const info = await prettier.getFileInfo(file, {
			ignorePath: fs.existsSync(ignorePath) ? ignorePath : undefined
		});
		if (info.ignored || !info.inferredParser) continue;
		const options = await prettier.resolveConfig(file);
		fs.writeFileSync(file, await prettier.format(fs.readFileSync(file, "utf8"), { ...options, filepath: file }));
	}
}

// The UI's API types with the new module's routes in them: its api file names its row type from there.
export async function regenerateApiTypes(root: string): Promise<string> {
	const { openApiFromServices, renderApiTypes, SCHEMA_FILE } = await import("./api-types");
	fs.writeFileSync(
		path.join(root, SCHEMA_FILE),
		await renderApiTypes(openApiFromServices(path.join(root, "services")))
	);
	return SCHEMA_FILE;
}

if (require.main === module) {
	const root = path.resolve(process.env.ROOT ?? path.join(__dirname, ".."));
	(async () => {
		const written = createModule(process.argv[2], root);
		await formatFiles(root, written);
		written.push(await regenerateApiTypes(root));
		console.log(`module ${process.argv[2]}:\n  ${written.join("\n  ")}\nnext: npm run compose, npm test`);
	})().catch(err => {
		console.error(`new-module: ${(err as Error).message}`);
		process.exit(1);
	});
}
