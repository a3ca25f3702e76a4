// prompts: what a managed prompt costs its caller, in one process on real PostgreSQL (broker calls, no HTTP).
// - prompts.render with a warm cache: p50/p99 one at a time, and renders/s with BENCH_PROMPTS_CONCURRENCY in flight;
// - prompts.render right after an invalidation (a `prompts.changed` broadcast before each one: the template, its
//   label and any running experiment are read again);
// - prompts.complete against ai.complete, both against a fake OpenAI upstream on 127.0.0.1: the overhead of
//   rendering and recording the execution.
// Every render writes its execution row and outbox event, as in production. Prints a table and writes
// bench/results/prompts.json. Env: BENCH_PROMPTS_RENDERS (3000), BENCH_PROMPTS_COMPLETES (300),
// BENCH_PROMPTS_CONCURRENCY (16).
import fs from "fs";
import path from "path";
import crypto from "crypto";
import { createTestBroker, as } from "../test/helpers/broker";
import { AUTH_FILES } from "../test/helpers/gateway";
import { FakeOpenAI } from "../test/helpers/fake-openai";
import { createTestDatabase } from "../test/helpers/infra";
import type { AuthInfo } from "../lib/permissions";

const RENDERS = Number(process.env.BENCH_PROMPTS_RENDERS ?? 3000);
const COMPLETES = Number(process.env.BENCH_PROMPTS_COMPLETES ?? 300);
const CONCURRENCY = Number(process.env.BENCH_PROMPTS_CONCURRENCY ?? 16);
const FILES = [
	...AUTH_FILES,
	"services/secrets/secrets.service.ts",
	"services/ai/ai.service.ts",
	"services/ai/providers.service.ts",
	"services/ai/deployments.service.ts",
	"services/ai/presets.service.ts",
	"services/ai/routing.service.ts",
	"services/ai/fallbacks.service.ts",
	"services/ai/limits.service.ts",
	"services/prompts/prompts.service.ts",
	"services/prompts/executions.service.ts",
	"services/prompts/experiments.service.ts"
];

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (v: number) => Math.round(v * 100) / 100;

async function timed(n: number, fn: (i: number) => Promise<unknown>) {
	const lat: number[] = [];
	const started = performance.now();
	for (let i = 0; i < n; i++) {
		const t0 = performance.now();
		await fn(i);
		lat.push(performance.now() - t0);
	}
	const elapsed = performance.now() - started;
	lat.sort((a, b) => a - b);
	return { p50: ms(pct(lat, 50)), p99: ms(pct(lat, 99)), perSecond: Math.round((n / elapsed) * 1000) };
}

async function throughput(n: number, concurrency: number, fn: () => Promise<unknown>) {
	let next = 0;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (next++ < n) await fn();
		})
	);
	return Math.round((n / (performance.now() - started)) * 1000);
}

async function main() {
	const up = new FakeOpenAI();
	const upstream = await up.start();
	const db = await createTestDatabase();
	const t = await createTestBroker(
		{
			DATABASE_URL: db.url,
			MASTER_KEY: crypto.randomBytes(32).toString("base64"),
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			RATE_LIMIT_USER_PER_MINUTE: "100000000"
		},
		FILES
	);
	const broker = t.broker;
	try {
		const reg: any = await broker.call("auth.register", {
			email: "bench-prompts@example.com",
			password: "correct horse battery",
			name: "Bench"
		});
		const auth: AuthInfo = await broker.call("auth.resolve", {
			token: reg.accessToken,
			organizationId: reg.organization.id
		});
		const call = (action: string, params: object) => broker.call<any, any>(action, params, as(auth));
		await call("secrets.create", { environment: "production", name: "KEY", value: "sk-bench-prompts-1" });
		const p = await call("ai-providers.create", { name: "p", base_url: upstream, api_key_secret: "KEY" });
		await call("ai-deployments.create", { provider_id: p.id, name: "smart", provider_model: "a-smart" });
		await call("prompts.create", {
			name: "bench",
			messages: [
				{ role: "system", content: "You review {{ language }} code{% if strict %}, strictly{% endif %}." },
				{ role: "user", content: "Review:{% for f in files %} {{ f }}{% endfor %}" }
			],
			variables: [
				{ name: "language", type: "string", maxLength: 20 },
				{ name: "strict", type: "boolean", default: false },
				{ name: "files", type: "list", maxLength: 5 }
			],
			model_settings: { model: "smart", temperature: 0.2 },
			label: "production"
		});
		const variables = { language: "Go", strict: true, files: ["a.go", "b.go"] };
		const render = () => call("prompts.render", { name: "bench", variables, subject: "bench" });

		for (let i = 0; i < 200; i++) await render();
		const warm = await timed(RENDERS, render);
		const warmRps = await throughput(RENDERS, CONCURRENCY, render);
		const invalidated = await timed(Math.round(RENDERS / 10), async () => {
			await broker.broadcast("prompts.changed", { name: "bench" });
			return render();
		});

		const messages = [
			{ role: "system", content: "You review Go code, strictly." },
			{ role: "user", content: "Review: a.go b.go" }
		];
		const ai = () => call("ai.complete", { model: "smart", temperature: 0.2, messages });
		const complete = () => call("prompts.complete", { name: "bench", variables, subject: "bench" });
		for (let i = 0; i < 30; i++) await Promise.all([ai(), complete()]);
		const aiAlone = await timed(COMPLETES, ai);
		const viaPrompts = await timed(COMPLETES, complete);

		const result = {
			at: new Date().toISOString(),
			renders: RENDERS,
			concurrency: CONCURRENCY,
			render_warm: { ...warm, concurrentPerSecond: warmRps },
			render_after_invalidation: invalidated,
			complete: {
				ai_complete: aiAlone,
				prompts_complete: viaPrompts,
				overhead_p50_ms: ms(viaPrompts.p50 - aiAlone.p50),
				overhead_p99_ms: ms(viaPrompts.p99 - aiAlone.p99)
			}
		};
		console.table({
			"render, warm cache": { p50_ms: warm.p50, p99_ms: warm.p99, per_s: warm.perSecond },
			[`render, warm, ${CONCURRENCY} in flight`]: { p50_ms: "", p99_ms: "", per_s: warmRps },
			"render after invalidation": {
				p50_ms: invalidated.p50,
				p99_ms: invalidated.p99,
				per_s: invalidated.perSecond
			},
			"ai.complete": { p50_ms: aiAlone.p50, p99_ms: aiAlone.p99, per_s: aiAlone.perSecond },
			"prompts.complete": { p50_ms: viaPrompts.p50, p99_ms: viaPrompts.p99, per_s: viaPrompts.perSecond }
		});
		console.log(
			`prompts.complete over ai.complete: +${result.complete.overhead_p50_ms} ms p50, +${result.complete.overhead_p99_ms} ms p99`
		);
		fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
		fs.writeFileSync(path.join(__dirname, "results", "prompts.json"), JSON.stringify(result, null, 2) + "\n");
	} finally {
		await t.stop();
		await up.stop();
		await db.drop();
	}
}

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
