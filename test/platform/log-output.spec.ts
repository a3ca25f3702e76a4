// The platform's log output (lib/log-safe.ts), in a child process writing to real pipes: lines are escaped, go to
// stdout (warnings and errors to stderr) in the order they were logged, and none is lost when the process exits
// at once after logging, even though lines are written once per turn of the event loop.
import { spawnSync } from "child_process";
import path from "path";

const ROOT = path.join(__dirname, "../..");

function run(script: string) {
	const code = `
		const { ServiceBroker } = require("moleculer");
		const { SafeConsoleLogger } = require("./lib/log-safe");
		const broker = new ServiceBroker({
			nodeID: "log-test",
			logger: new SafeConsoleLogger({ level: "info", formatter: "short", colors: false })
		});
		const log = broker.getLogger("probe");
		${script}`;
	return spawnSync(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, encoding: "utf8" });
}

describe("log output", () => {
	test("every line logged before an immediate exit is written, in order, to its stream", () => {
		const r = run(`
			for (let i = 0; i < 500; i++) log.info("line " + i);
			log.warn("careful");
			log.error("broken \\u001b[2J\\ninjected");
			process.exit(3);`);
		expect(r.status).toBe(3);
		const out = r.stdout.split("\n").filter(l => l.includes("PROBE"));
		expect(out).toHaveLength(500);
		out.forEach((l, i) => expect(l).toMatch(new RegExp(`INFO .*PROBE: line ${i}$`)));
		const err = r.stderr.split("\n").filter(l => l.includes("PROBE"));
		expect(err).toHaveLength(2);
		expect(err[0]).toMatch(/WARN .*PROBE: careful$/);
		// A client's text cannot clear the terminal or start a forged line.
		expect(err[1]).toMatch(/ERROR .*PROBE: broken \\x1b\[2J\\ninjected$/);
	});

	test("an uncaught exception still leaves the lines logged before it", () => {
		const r = run(`
			log.info("before the crash");
			setImmediate(() => { log.info("last words"); throw new Error("boom"); });`);
		expect(r.status).not.toBe(0);
		expect(r.stdout).toMatch(/before the crash/);
		expect(r.stdout).toMatch(/last words/);
		expect(r.stderr).toMatch(/boom/);
	});
});
