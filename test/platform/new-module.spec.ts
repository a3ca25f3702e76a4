// `npm run new-module example` in a temporary copy of the project (nothing is written to the repository): the
// module it makes starts, passes the conformance suite, and appears in OpenAPI, the UI's module list and compose
// without a central file being edited; its hand-written code is a few dozen lines. Names are refused clearly.
import fs from "fs";
import os from "os";
import path from "path";
import { execFileSync } from "child_process";
import { describeWith } from "../helpers/infra";
import { ROOT } from "../helpers/broker";

jest.setTimeout(120_000);

// A copy of what the generator and a broker need, node_modules shared by a link.
function projectCopy(): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-new-module-"));
	for (const entry of [
		"lib",
		"mixins",
		"services",
		"migrations",
		"scripts",
		"test/helpers",
		"test/ai",
		"frontend/src"
	])
		fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
	for (const file of [
		"moleculer.config.ts",
		"package.json",
		"docker-compose.yml",
		"tsconfig.json",
		"eslint.config.mjs",
		".prettierrc",
		".prettierignore",
		".editorconfig"
	])
		fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
	fs.symlinkSync(fs.realpathSync(path.join(ROOT, "node_modules")), path.join(dir, "node_modules"));
	return dir;
}

const newModule = (root: string, name: string) =>
	execFileSync(process.execPath, ["--import", "tsx", "scripts/new-module.ts", name], {
		cwd: root,
		encoding: "utf8",
		stdio: "pipe"
	});

const refusal = (root: string, name: string) => {
	try {
		newModule(root, name);
	} catch (err) {
		return String((err as { stderr: string }).stderr);
	}
	throw new Error(`new-module ${name} was accepted`);
};

const copy = projectCopy();
const written = newModule(copy, "example");
afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

// Everything below runs the copy's own code, so its services folder is the one with `example` in it.
const conformance: typeof import("../helpers/conformance") = require(path.join(copy, "test/helpers/conformance"));
const modules = conformance.modulesUnderTest(path.join(copy, "services"), ["example"]);

test("the generator writes the module's files and refuses bad or taken names", () => {
	expect(written).toMatch(/services\/example\/example\.service\.ts/);
	expect(fs.existsSync(path.join(copy, "migrations/example/0001_create_example_items.sql"))).toBe(true);
	expect(refusal(copy, "example")).toMatch(/"example" exists already: services\/example/);
	expect(refusal(copy, "Bad_Name")).toMatch(/not a module name: lowercase kebab-case/);
	expect(refusal(copy, "platform")).toMatch(/"platform" is reserved/);
	expect(refusal(copy, "")).toMatch(/usage: npm run new-module <name>/);
	expect(fs.existsSync(path.join(copy, "services/Bad_Name"))).toBe(false);
});

test("its UI types come from the regenerated API types, and its store from the shared CRUD composable", () => {
	const schema = fs.readFileSync(path.join(copy, "frontend/src/api/schema.d.ts"), "utf8");
	expect(schema).toMatch(/"\/api\/example\/\{id\}": \{/);
	expect(schema).toMatch(/ExampleItem: \{[^}]*description: string;[^}]*name: string;/s);
	const api = fs.readFileSync(path.join(copy, "frontend/src/api/example.api.ts"), "utf8");
	expect(api).toContain('export type ExampleItem = Schema<"ExampleItem">;');
	expect(api).toContain('crud<ExampleItem, ExampleItemInput>("/example")');
	expect(fs.readFileSync(path.join(copy, "frontend/src/stores/example.ts"), "utf8")).toContain("useCrud(exampleApi)");
});

test("its hand-written code is a few dozen lines", () => {
	const code = ["module", "events", "service"]
		.map(role => `services/example/example.${role}.ts`)
		.flatMap(f => fs.readFileSync(path.join(copy, f), "utf8").split("\n"))
		.filter(line => line.trim() && !line.trim().startsWith("//"));
	expect(code.length).toBeLessThan(100);
});

test("its files pass ESLint and Prettier as generated (npm run lint)", () => {
	const files = written
		.split("\n")
		.map(l => l.trim())
		.filter(f => /^(services|test|frontend)\/.*\.(ts|vue)$/.test(f) && !f.endsWith("schema.d.ts"));
	expect(files.length).toBeGreaterThanOrEqual(8);
	const lint = (bin: string, args: string[]) =>
		execFileSync(path.join(copy, "node_modules/.bin", bin), [...args, ...files], { cwd: copy, encoding: "utf8" });
	expect(() => lint("prettier", ["--check", "--log-level", "warn"])).not.toThrow();
	expect(() => lint("eslint", ["--max-warnings", "0"])).not.toThrow();
});

test("it is in compose and in the UI's module list without editing either", () => {
	const compose: typeof import("../../scripts/compose") = require(path.join(copy, "scripts/compose"));
	const lib: typeof import("../../lib/module") = require(path.join(copy, "lib/module"));
	const text = fs.readFileSync(path.join(copy, "docker-compose.yml"), "utf8");
	const derived = compose.renderCompose(text, lib.loadManifests(path.join(copy, "services")));
	expect(derived).toContain(
		"  example:\n    <<: *service\n    environment:\n      <<: *service-env\n      SERVICES: example\n"
	);
	// The UI finds modules/*.module.ts by import.meta.glob: the generated entry matches and is a module.
	const index = fs.readFileSync(path.join(copy, "frontend/src/modules/index.ts"), "utf8");
	expect(index).toContain('import.meta.glob<Record<string, unknown>>("./*.module.ts"');
	const entry = fs.readFileSync(path.join(copy, "frontend/src/modules/example.module.ts"), "utf8");
	expect(entry).toMatch(/export const exampleModule: AppModule = \{\n\tname: "example",\n\torder: \d+,/);
});

describeWith(["postgres"])("the generated module on a gateway (real PostgreSQL)", () => {
	let c: Awaited<ReturnType<typeof conformance.startCluster>> | undefined;

	beforeAll(async () => {
		c = await conformance.startCluster({ NODE_ID: "new-module", SERVICES_DIR: path.join(copy, "services") }, [
			path.join(copy, "services/example/example.service.ts")
		]);
		await conformance.waitForRoutes(c, modules);
	});

	afterAll(async () => {
		await c?.stop();
	});

	test("its routes are in OpenAPI with their permissions", async () => {
		const doc = (await fetch(`http://127.0.0.1:${c!.port}/api/openapi.json`).then(r => r.json())) as any;
		expect(doc.paths["/api/example"].post["x-permission"]).toBe("example:write");
		expect(doc.paths["/api/example/{id}"].get["x-permission"]).toBe("example:read");
	});

	conformance.describeConformance(modules, () => c!);
});
