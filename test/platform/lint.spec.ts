// ESLint and Prettier over the whole tree (the same as `npm run lint`): a lint error or an unformatted file fails
// `npm test` with the tools' own output. ESLint keeps its cache in the OS temp dir so a rerun takes seconds.
import os from "os";
import path from "path";
import { execFile } from "child_process";

const ROOT = path.resolve(__dirname, "../..");

function run(bin: string, args: string[]): Promise<{ code: number; output: string }> {
	return new Promise(resolve =>
		execFile(
			path.join(ROOT, "node_modules/.bin", bin),
			args,
			{ cwd: ROOT, timeout: 120_000 },
			(err, stdout, stderr) =>
				resolve({
					code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
					output: `${stdout}${stderr}`.trim()
				})
		)
	);
}

describe("lint", () => {
	test("eslint finds no error", async () => {
		const cache = path.join(os.tmpdir(), `coder-ide-eslint-${Buffer.from(ROOT).toString("base64url")}`);
		const { code, output } = await run("eslint", [".", "--cache", "--cache-location", cache, "--quiet"]);
		expect(output).toBe("");
		expect(code).toBe(0);
	}, 120_000);

	test("prettier --check finds every file formatted", async () => {
		const { code, output } = await run("prettier", ["--check", ".", "--log-level", "warn"]);
		expect(output).toBe("");
		expect(code).toBe(0);
	}, 120_000);
});
