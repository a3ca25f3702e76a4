// The tests run as JavaScript stripped of its types (@swc/jest), so the types are checked here: the services, tests
// and bench with tsc, the UI's components and their templates with vue-tsc (the same as `npm run typecheck`).
import path from "path";
import { execFile } from "child_process";

const ROOT = path.resolve(__dirname, "../..");

function check(bin: string, project: string): Promise<{ code: number; output: string }> {
	return new Promise(resolve =>
		execFile(
			path.join(ROOT, "node_modules/.bin", bin),
			["--noEmit", "-p", project],
			{ cwd: ROOT, timeout: 180_000 },
			(err, stdout, stderr) =>
				resolve({
					code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
					output: `${stdout}${stderr}`.trim()
				})
		)
	);
}

describe("types", () => {
	test.each([
		["tsc", "tsconfig.json"],
		["vue-tsc", "frontend/tsconfig.json"]
	])(
		"%s -p %s finds no error",
		async (bin, project) => {
			const { code, output } = await check(bin, project);
			expect(output).toBe("");
			expect(code).toBe(0);
		},
		180_000
	);
});
