// The quotas and budgets page as an admin uses it: the embedded platform (PGlite, counters in process memory) serving
// the built UI in headless Chromium, a fake OpenAI upstream on 127.0.0.1. The owner adds a quota through the dialog
// (a refused field named beside its input), sends completions until the quota refuses one, and sees the consumption
// bar full and the alerts the crossings sent.
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import fs from "fs";
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signUp, startUiPlatform, pageApi } from "../helpers/browser";
import { FakeOpenAI } from "../helpers/fake-openai";

const owner = {
	name: "Ada Lovelace",
	email: `ada-limits-${Date.now()}@example.com`,
	password: "correct horse battery"
};
const SHOTS = path.join(ARTIFACTS, "usage");

describeWithBrowser()("Quotas and budgets UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const up = new FakeOpenAI();

	// The REST API as the signed-in page calls it.
	const api = (method: string, url: string, body?: unknown) => pageApi(page, method, url, body);

	beforeAll(async () => {
		await up.start();
		ui = await startUiPlatform("usage-limits-browser", {
			timeoutMs: 15_000,
			env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1", AI_LOG_BATCH_MS: "0" }
		});
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await up.stop();
	});

	test("an admin adds a quota, completions use it up, the page shows the full bar and the alerts", async () => {
		await signUp(page, base, owner);
		const provider = await api("POST", "/api/ai/providers", { name: "fake", base_url: up.baseUrl });
		expect(provider.status).toBe(200);
		const dep = await api("POST", "/api/ai/deployments", {
			provider_id: provider.body.id,
			name: "gpt-ui",
			provider_model: "fake-model"
		});
		expect(dep.status).toBe(200);

		await page.goto(`${base}/usage/limits`);
		await page.getByTestId("page-title").filter({ hasText: "Quotas and budgets" }).waitFor();
		await page.getByTestId("usage-alerts-empty").waitFor();
		await page.getByTestId("usage-new-quota").click();
		await page.getByTestId("usage-limit-name").fill("Two a day");
		await page.getByTestId("usage-limit-metric").selectOption("requests");
		await page.getByTestId("usage-limit-amount").fill("2");
		await page.getByTestId("usage-limit-period").selectOption("day");
		// A warning at 150% of the limit is refused, and said so beside the field.
		await page.getByTestId("usage-limit-thresholds").fill("50, 150");
		await page.getByTestId("usage-limit-save").click();
		await page
			.getByTestId("usage-limit-dialog")
			.getByText(/threshold/i)
			.first()
			.waitFor();
		await page.getByTestId("usage-limit-thresholds").fill("50");
		await page.getByTestId("usage-limit-save").click();
		const row = page.locator('[data-testid="usage-limit-row"][data-name="Two a day"]');
		await row.getByTestId("usage-limit-used").filter({ hasText: "0 of 2 requests" }).waitFor();

		const ask = { model: "gpt-ui", messages: [{ role: "user", content: "hi" }] };
		for (let i = 0; i < 2; i++) expect((await api("POST", "/v1/chat/completions", ask)).status).toBe(200);
		const refused = await api("POST", "/v1/chat/completions", ask);
		expect(refused.status).toBe(429);
		expect(refused.body.error.message).toContain('quota "Two a day"');

		await page.reload();
		await row.getByTestId("usage-limit-used").filter({ hasText: "2 of 2 requests" }).waitFor();
		expect(await row.getByRole("meter").getAttribute("aria-valuenow")).toBe("100");
		// The alerts come from the consumer of ai.events; the page reads them again every few seconds.
		await page.locator('[data-testid="usage-alert-row"][data-kind="exceeded"]').waitFor();
		await page.locator('[data-testid="usage-alert-row"][data-kind="warning"]').getByText("50% reached").waitFor();

		fs.mkdirSync(SHOTS, { recursive: true });
		await page.screenshot({ path: path.join(SHOTS, "limits.png"), fullPage: true });
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	}, 240_000);
});
