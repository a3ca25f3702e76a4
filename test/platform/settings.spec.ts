// Module settings: a module declares the variables it reads in its manifest (lib/settings.ts); lib/config.ts reads
// and validates every module's at start-up (a bad value names the variable), and README.md's configuration table
// lists each of them.
import fs from "fs";
import os from "os";
import path from "path";
import { ConfigError, loadConfig, moduleSettings, setConfig } from "../../lib/config";
import { defineModule, loadManifests, SERVICES_DIR } from "../../lib/module";
import { setting } from "../../lib/settings";
import { ROOT } from "../helpers/broker";
import aiModule from "../../services/ai/ai.module";

const tmpDirs: string[] = [];
afterAll(() => tmpDirs.forEach(d => fs.rmSync(d, { recursive: true, force: true })));

// A services dir with one module whose manifest is `manifest` (TypeScript, importing the real lib/).
function moduleDir(name: string, body: string): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-settings-"));
	tmpDirs.push(dir);
	fs.mkdirSync(path.join(dir, name));
	const lib = (to: string) => JSON.stringify(path.join(ROOT, "lib", to));
	fs.writeFileSync(
		path.join(dir, name, `${name}.module.ts`),
		`import { defineModule } from ${lib("module")};
import { setting } from ${lib("settings")};
export default defineModule({ name: "${name}", description: "d", publishes: [], consumes: [], ${body} });`
	);
	return dir;
}

// The variables README.md's configuration table names (`A`, `B` in a row's first cell).
function readmeVariables(): Set<string> {
	const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
	const start = readme.indexOf("## Configuration");
	const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
	const names = section
		.split("\n")
		.filter(line => line.startsWith("| `"))
		.flatMap(line => [...line.split("|")[1].matchAll(/`([A-Z][A-Z0-9_]*)/g)].map(m => m[1]));
	return new Set(names);
}

describe("module settings", () => {
	test("every setting a manifest declares is in README.md's configuration table", () => {
		const declared = loadManifests(SERVICES_DIR).flatMap(m => Object.values(m.settings ?? {}).map(s => s.env));
		expect(declared).toEqual(expect.arrayContaining(["AI_LOG_BATCH_MS", "AI_ALLOWED_PRIVATE_HOSTS", "MASTER_KEY"]));
		const documented = readmeVariables();
		expect(declared.filter(env => !documented.has(env))).toEqual([]);
	});

	test("lib/config.ts reads no module's variable itself", () => {
		const source = fs.readFileSync(path.join(ROOT, "lib/config.ts"), "utf8");
		const declared = loadManifests(SERVICES_DIR).flatMap(m => Object.values(m.settings ?? {}).map(s => s.env));
		expect(declared.filter(env => source.includes(`"${env}"`))).toEqual([]);
	});

	test("a module's settings are read at start-up and typed for its code; a bad value names the variable", () => {
		const dir = moduleDir(
			"notes",
			`settings: {
				pageSize: setting.int({ env: "NOTES_PAGE_SIZE", default: 50, min: 1, max: 500, description: "notes per page" }),
				title: setting.string({ env: "NOTES_TITLE", description: "the notebook's title" })
			}`
		);
		const config = loadConfig({ SERVICES_DIR: dir, NOTES_PAGE_SIZE: "20" });
		expect(config.modules.notes).toEqual({ pageSize: 20, title: undefined });
		expect(config.modules.ai).toMatchObject({ logBatchMs: 200 }); // the platform's modules are read too
		setConfig(loadConfig({ AI_LOG_BATCH_MS: "0" }));
		const ai: { logBatchMs: number } = moduleSettings(aiModule); // typed from the manifest
		expect(ai.logBatchMs).toBe(0);

		for (const bad of ["0", "501", "many"]) {
			const refused = () => loadConfig({ SERVICES_DIR: dir, NOTES_PAGE_SIZE: bad });
			expect(refused).toThrow(ConfigError);
			expect(refused).toThrow(
				new RegExp(`^NOTES_PAGE_SIZE: must be an integer between 1 and 500, got "${bad}"$`)
			);
		}
	});

	test("a custom setting's complaint is reported under its variable", () => {
		const manifest = defineModule({
			name: "x",
			description: "d",
			publishes: [],
			consumes: [],
			settings: {
				mode: setting.custom({
					env: "X_MODE",
					description: "fast or safe",
					parse: raw => {
						if (raw !== undefined && raw !== "fast" && raw !== "safe")
							throw new Error(`must be fast or safe, got "${raw}"`);
						return raw ?? "safe";
					}
				})
			}
		});
		expect(manifest.settings.mode.parse(undefined)).toBe("safe");
		const refused = new ConfigError("X_MODE", 'must be fast or safe, got "slow"');
		expect(() => manifest.settings.mode.parse("slow")).toThrow(refused);
	});

	test.each([
		[
			"a setting without a description",
			`settings: { a: setting.int({ env: "X_A", default: 1, description: "" }) }`,
			/setting X_A has no description/
		],
		[
			"a setting whose env is not a variable name",
			`settings: { a: setting.string({ env: "x-a", description: "d" }) }`,
			/setting a: env "x-a" is not a variable name/
		],
		[
			"a setting not made with setting.*",
			`settings: { a: { env: "X_A", description: "d" } as any }`,
			/setting X_A was not made with setting/
		],
		[
			"a variable another module declares",
			`settings: { a: setting.string({ env: "AI_LOG_BATCH_MS", description: "d" }) }`,
			/setting AI_LOG_BATCH_MS is already declared by module "ai"/
		]
	])("%s is refused", (_what, body, message) => {
		const dir = moduleDir("x", body);
		if (String(message).includes("already declared")) {
			// Two folders' modules meet when the platform reads both directories.
			expect(() => loadConfig({ SERVICES_DIR: dir })).toThrow(message);
		} else expect(() => loadManifests(dir)).toThrow(message);
	});
});
