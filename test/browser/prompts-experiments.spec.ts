// The prompt experiments dashboard in the built UI against an embedded platform: an experiment started through the
// dialog, outcomes fed through the API (renders and their reported success, seeded), the verdict in words moving from
// "No difference yet" to "B wins", the variants' charts and sample counts, and a manual stop promoting a variant.
// Screenshots at 1400×900 and 390×844 go to SHOTS_DIR (default test-artifacts/).
import fs from "fs";
import path from "path";
import type { Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const owner = {
	name: "Ada Lovelace",
	email: `ada-experiments-${stamp}@example.com`,
	password: "correct horse battery"
};
const SHOTS = process.env.SHOTS_DIR ?? ARTIFACTS;

// Seeded PRNG (mulberry32): the same outcomes on every run.
function prng(seed: number) {
	return () => {
		seed = (seed + 0x6d2b79f5) | 0;
		let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

describeWithBrowser()("prompt experiments dashboard (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	let session: { accessToken: string; organization: { id: string } };
	let templateId = "";

	const rest = async (method: string, url: string, body?: unknown) => {
		const res = await fetch(base + url, {
			method,
			headers: {
				Authorization: `Bearer ${session.accessToken}`,
				"X-Organization-Id": session.organization.id,
				"Content-Type": "application/json"
			},
			body: body === undefined ? undefined : JSON.stringify(body)
		});
		const json: any = await res.json();
		if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
		return json;
	};
	// `sessions` sessions render once and report success with their version's conversion.
	async function feed(name: string, sessions: number, conversion: Record<number, number>, seed: number) {
		const rand = prng(seed);
		for (let i = 0; i < sessions; i++) {
			const r = await rest("POST", "/api/prompts/render", { name, subject: `${name}-${seed}-${i}` });
			await rest("POST", `/api/prompts/executions/${r.execution_id}/feedback`, {
				success: rand() < conversion[r.version.number]
			});
		}
	}
	async function shots(name: string) {
		fs.mkdirSync(SHOTS, { recursive: true });
		let phoneWidth = 0;
		for (const [w, h, tag] of [
			[1400, 900, "desktop"],
			[390, 844, "phone"]
		] as const) {
			await page.setViewportSize({ width: w, height: h });
			await page.waitForTimeout(150);
			await page.screenshot({ path: path.join(SHOTS, `${name}-${tag}.png`), fullPage: true });
			if (tag === "phone") phoneWidth = await page.evaluate(() => document.documentElement.scrollWidth);
		}
		await page.setViewportSize({ width: 1280, height: 800 });
		expect(phoneWidth).toBe(390);
	}
	const verdict = () => page.getByTestId("experiment-verdict");

	beforeAll(async () => {
		ui = await startUiPlatform("prompts-experiments", { timeoutMs: 15_000 });
		({ page, base } = ui);
		const res = await fetch(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify(owner)
		});
		session = (await res.json()) as any;
		const t = await rest("POST", "/api/prompts", {
			name: "greeting",
			messages: [{ role: "user", content: "Hello {{ who }}" }],
			variables: [{ name: "who", type: "string", default: "there" }],
			label: "production"
		});
		templateId = t.template.id;
		await rest("POST", `/api/prompts/${templateId}/versions`, {
			messages: [{ role: "user", content: "Hi {{ who }}, how can I help?" }],
			variables: [{ name: "who", type: "string", default: "there" }]
		});
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	afterEach(() => {
		expect(ui?.pageErrors).toEqual([]);
		expect(ui?.cspViolations).toEqual([]);
	});

	test("start through the dialog: the dashboard says it is collecting", async () => {
		await signIn(page, base, owner);
		await page.getByTestId("nav-prompts-experiments").click();
		await page.getByTestId("page-title").filter({ hasText: "Prompt experiments" }).waitFor();
		await page.getByTestId("experiments-empty").waitFor();
		await page.getByTestId("experiment-new").click();
		const dialog = page.getByTestId("experiment-dialog");
		await dialog.getByTestId("experiment-template").selectOption({ label: "greeting" });
		// The two versions are offered as A (v1) and B (v2), half and half.
		await dialog
			.getByTestId("experiment-variant-version-1")
			.locator("option", { hasText: "v2" })
			.waitFor({ state: "attached" });
		await page.waitForFunction(
			() =>
				(document.querySelector('[data-testid="experiment-variant-version-1"]') as HTMLSelectElement)?.value ===
				"2"
		);
		await dialog.getByTestId("experiment-name").fill("Friendlier greeting");
		await dialog.getByTestId("experiment-sticky").selectOption("session");
		await dialog.getByTestId("experiment-min-samples").fill("40");
		await shots("prompts-experiment-start");
		await dialog.getByTestId("experiment-submit").click();
		await page.getByTestId("experiment-detail").waitFor();
		await verdict().filter({ hasText: "No difference yet: 0 of 40 samples" }).waitFor();
		expect(await page.getByTestId("experiment-variant-row").count()).toBe(2);
		await page.getByTestId("experiment-row").filter({ hasText: "Running" }).waitFor();
	});

	test("outcomes fed through the API: samples and charts grow, then B wins and takes production", async () => {
		await feed("greeting", 30, { 1: 0.2, 2: 0.7 }, 1);
		await verdict()
			.filter({ hasText: /No difference yet: \d+ of 40 samples/ })
			.waitFor();
		await page.getByTestId("experiment-charts").waitFor();
		await shots("prompts-experiment-collecting");

		await feed("greeting", 170, { 1: 0.2, 2: 0.7 }, 2);
		await verdict()
			.filter({ hasText: /^B wins: conversion 0\.\d\d vs 0\.\d\d, p [<=] [\d.]+ \(needs 0\.05\)$/ })
			.waitFor({ timeout: 20_000 });
		await page.getByTestId("experiment-status").filter({ hasText: "Completed" }).waitFor();
		await page.getByTestId("experiment-winner-badge").waitFor();
		const samples = await page.getByTestId("experiment-samples").allTextContents();
		samples.forEach(s => expect(Number(s)).toBeGreaterThanOrEqual(40));
		expect(await page.getByTestId("experiment-charts").locator("figure").count()).toBe(2);
		const detail = await rest("GET", `/api/prompts/${templateId}`);
		expect(detail.template.labels.production).toBe(2);
		await shots("prompts-experiment-winner");
	});

	test("a manual stop promotes the chosen variant", async () => {
		await rest("POST", "/api/prompts/experiments", {
			template_id: templateId,
			name: "Back to the first",
			metric: "success",
			variants: [
				{ version: 1, weight: 1 },
				{ version: 2, weight: 3 }
			]
		});
		await page.getByTestId("experiment-row").filter({ hasText: "Back to the first" }).getByRole("link").click();
		await verdict().filter({ hasText: "No difference yet: 0 of 100 samples" }).waitFor();
		await page.getByTestId("experiment-stop").click();
		await page
			.getByTestId("experiment-promote")
			.getByLabel(/Promote A \(version 1/)
			.check();
		await shots("prompts-experiment-stop");
		await page.getByTestId("confirm-dialog").getByRole("button", { name: "Stop experiment" }).click();
		await page.getByTestId("experiment-status").filter({ hasText: "Stopped" }).waitFor();
		await verdict().filter({ hasText: "Stopped; A (version 1) promoted" }).waitFor();
		expect((await rest("GET", `/api/prompts/${templateId}`)).template.labels.production).toBe(1);
	});
});
