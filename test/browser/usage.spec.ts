// The usage UI as people use it: the built web UI served by an embedded platform process (PGlite, in-process
// channels), driven in headless Chromium, with an OpenAI-compatible fake upstream on 127.0.0.1. An owner's two
// completions are metered (ai.usage.recorded → the usage module), the Usage page shows them in its totals, chart,
// cost breakdown and top models; on the Pricing page the owner adds a price version, which is listed as in force.
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import crypto from "crypto";
import fs from "fs";
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signUp, startUiPlatform, pageApi } from "../helpers/browser";
import { FakeOpenAI } from "../helpers/fake-openai";

const stamp = Date.now();
const owner = { name: "Katherine Johnson", email: `kj-usage-${stamp}@example.com`, password: "correct horse battery" };

describeWithBrowser()("Usage UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const up = new FakeOpenAI();

	// The REST API as the signed-in page calls it.
	const api = (method: string, url: string, body?: unknown) => pageApi(page, method, url, body);

	beforeAll(async () => {
		await up.start();
		ui = await startUiPlatform("usage-browser", {
			timeoutMs: 15_000,
			context: { viewport: { width: 1400, height: 900 } },
			env: {
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				AI_LOG_BATCH_MS: "0"
			}
		});
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await up.stop();
	});

	test("completions are metered and shown: totals, chart, cost by model, top models", async () => {
		await signUp(page, base, owner);
		const provider = await api("POST", "/api/ai/providers", { name: "fake", base_url: up.baseUrl });
		expect(provider.status).toBe(200);
		const dep = await api("POST", "/api/ai/deployments", {
			provider_id: provider.body.id,
			name: "gpt-usage",
			provider_model: "fake-model-1",
			input_price: 3,
			output_price: 15
		});
		expect(dep.status).toBe(200);
		for (const content of ["hello", "hello again"]) {
			const r = await api("POST", "/v1/chat/completions", {
				model: "gpt-usage",
				messages: [{ role: "user", content }]
			});
			expect(r.status).toBe(200);
		}
		await page.getByTestId("nav-usage").click();
		await page.getByTestId("page-title").filter({ hasText: "Usage" }).waitFor();
		// Metering is asynchronous (outbox → channel → usage): the page shows it once recorded.
		for (let i = 0; i < 50; i++) {
			if ((await page.getByTestId("usage-total-requests").textContent())?.trim() === "2") break;
			await page.waitForTimeout(200);
			await page.getByTestId("usage-period").selectOption(i % 2 ? "30 days" : "7 days");
		}
		await page.getByTestId("usage-total-requests").filter({ hasText: /^2$/ }).waitFor();
		expect(await page.getByTestId("usage-total-cost").textContent()).toMatch(/^\$/);
		expect(await page.getByTestId("usage-bar").count()).toBeGreaterThan(0);
		await page.getByTestId("usage-top-model").getByText("gpt-usage").waitFor();
		await page.getByTestId("usage-cost-breakdown").getByText("gpt-usage").waitFor();
		// Split by user: the owner's name is the legend's one entry.
		await page.getByTestId("usage-group").selectOption("user");
		await page.locator(".chart__legend").getByText(owner.name).waitFor();
		fs.mkdirSync(ARTIFACTS, { recursive: true });
		await page.screenshot({ path: path.join(ARTIFACTS, "usage-page.png"), fullPage: true });
		expect(ui!.pageErrors).toEqual([]);
	});

	test("the owner adds a price version; it is listed as in force", async () => {
		await page.getByTestId("nav-usage-pricing").click();
		await page.getByTestId("page-title").filter({ hasText: "Usage pricing" }).waitFor();
		await page.getByTestId("price-model").fill("gpt-usage");
		await page.getByTestId("price-input").fill("1.5");
		await page.getByTestId("price-output").fill("6");
		await page.getByTestId("price-add").click();
		const row = page.getByTestId("usage-pricing").locator("tr", { hasText: "gpt-usage" });
		await row.getByText("in force").waitFor();
		expect(await row.textContent()).toContain("1.5");
		await page.screenshot({ path: path.join(ARTIFACTS, "usage-pricing.png"), fullPage: true });
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
