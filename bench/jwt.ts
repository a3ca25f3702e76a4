// CPU per access-token sign and verify (auth.resolve verifies on every gateway cache miss), one call at a time.
// `node --import tsx bench/jwt.ts [path of another credentials module, for a before/after]`.
import crypto from "crypto";
import path from "path";

const SECRET = "bench-secret-bench-secret-bench-secret-0";
const claims = { sub: crypto.randomUUID(), sid: crypto.randomUUID() };
const N = Number(process.env.BENCH_JWT_CALLS ?? 20000);

async function perCall(f: () => unknown): Promise<number> {
	for (let i = 0; i < 2000; i++) await f();
	const start = process.hrtime.bigint();
	for (let i = 0; i < N; i++) await f();
	return Number(process.hrtime.bigint() - start) / 1000 / N;
}

async function main() {
	const modules = [["platform", "../services/auth/credentials"]];
	if (process.argv[2]) modules.push(["other", path.resolve(process.argv[2])]);
	for (let round = 0; round < 3; round++)
		for (const [label, file] of modules) {
			const m = await import(file);
			const token = await m.signAccessToken(SECRET, claims, 900);
			if (!(await m.verifyAccessToken(SECRET, token))) throw new Error(`${label}: its own token is refused`);
			const sign = await perCall(() => m.signAccessToken(SECRET, claims, 900));
			const verify = await perCall(() => m.verifyAccessToken(SECRET, token));
			console.log(`${label.padEnd(9)} sign ${sign.toFixed(1)} µs  verify ${verify.toFixed(1)} µs  per call`);
		}
}
main();
