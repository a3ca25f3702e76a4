// The completion log and rate limits as an admin uses them: a row opens the completion with its stored prompt and
// answer, timings, path, cost and API key; the log filters by API key; charts show the hour; CSV downloads the
// filtered log; the rate limits page shows what is used of each limit this minute. Screenshots at 1400×900 and at
// a phone's 390×844, where the page never scrolls sideways.
import fs from "fs";
import path from "path";
import type { Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";
import { FakeOpenAI } from "../helpers/fake-openai";

const stamp = Date.now();
const owner = { name: "Olga Admin", email: `olga-${stamp}@example.com`, password: "correct horse battery" };

describeWithBrowser()("completion log and rate limit usage (browser)", () => {
	const up = new FakeOpenAI();
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	let token = "";
	let org = "";
	const keys: Record<string, { id: string; key: string }> = {};

	async function api(method: string, url: string, body?: unknown, bearer = token) {
		const r = await fetch(base + url, {
			method,
			headers: {
				authorization: `Bearer ${bearer}`,
				"x-organization-id": org,
				"content-type": "application/json"
			},
			body: body === undefined ? undefined : JSON.stringify(body)
		});
		const json = await r.json();
		if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(json)}`);
		return json;
	}
	async function open(nav: string, title: string) {
		await page.getByTestId(`nav-${nav}`).click();
		await page.getByTestId("page-title").filter({ hasText: title }).waitFor();
	}
	async function shot(name: string) {
		await page.evaluate(() =>
			document.querySelectorAll<HTMLButtonElement>('[data-testid="toast"] button').forEach(b => b.click())
		);
		for (const [w, h, suffix] of [
			[1400, 900, ""],
			[390, 844, "-phone"]
		] as const) {
			await page.setViewportSize({ width: w, height: h });
			await page.screenshot({ path: path.join(ARTIFACTS, `${name}${suffix}.png`), fullPage: true });
			// Wide tables scroll inside their card; the page itself never does sideways.
			const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
			expect([name, w, overflow <= 1]).toEqual([name, w, true]);
		}
		await page.setViewportSize({ width: 1400, height: 900 });
	}

	beforeAll(async () => {
		const upstream = await up.start();
		up.set("small", { content: "Forty-two, as computed." });
		up.set("down", { status: 503 });
		ui = await startUiPlatform("logs-browser", {
			timeoutMs: 15_000,
			context: { acceptDownloads: true, viewport: { width: 1400, height: 900 } },
			env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }
		});
		({ page, base } = ui);
		const reg = await (
			await fetch(`${base}/api/auth/register`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify(owner)
			})
		).json();
		token = reg.accessToken;
		org = reg.organization.id;
		const provider = await api("POST", "/api/ai/providers", { name: "Local", base_url: upstream });
		for (const name of ["small", "down"])
			await api("POST", "/api/ai/deployments", {
				provider_id: provider.id,
				name,
				provider_model: name,
				input_price: 0.5,
				output_price: 1.5
			});
		await api("PATCH", "/api/ai/settings", { storeContent: true });
		await api("POST", "/api/ai/rate-limits", { scope: "organization", requests_per_minute: 100 });
		for (const name of ["laptop", "ci"]) keys[name] = await api("POST", "/api/auth/api-keys", { name });
		const chat = (key: string, model: string, content: string) =>
			fetch(`${base}/v1/chat/completions`, {
				method: "POST",
				headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
				body: JSON.stringify({ model, messages: [{ role: "user", content }] })
			});
		expect((await chat(keys.laptop.key, "small", "What is six times seven?")).status).toBe(200);
		expect((await chat(keys.ci.key, "down", "Will this fail?")).status).toBeGreaterThanOrEqual(500);
		await signIn(page, base, owner);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await up.stop();
	});

	test("a log row opens the completion: request, answer, timings, path, cost, API key, cache", async () => {
		await open("ai-logs", "Completion log");
		const row = page.locator('[data-testid="log-row"][data-model="small"]');
		await row.waitFor();
		await row.getByTestId("log-open").click();
		const dialog = page.getByTestId("log-detail");
		await dialog.getByTestId("log-detail-request").filter({ hasText: "What is six times seven?" }).waitFor();
		await dialog.getByTestId("log-detail-response").filter({ hasText: "Forty-two, as computed." }).waitFor();
		await expect(dialog.getByTestId("log-detail-who").textContent()).resolves.toContain("laptop");
		await expect(dialog.getByTestId("log-detail-path").textContent()).resolves.toContain("small");
		await expect(dialog.getByTestId("log-detail-cache").textContent()).resolves.toContain("Not from the cache");
		expect(await dialog.getByTestId("log-detail-cost").textContent()).toMatch(/^\$0\.0/);
		await page.screenshot({ path: path.join(ARTIFACTS, "logs-detail.png") });
		await dialog.getByTestId("log-detail-close").click();
		await dialog.waitFor({ state: "hidden" });
	});

	test("filters by API key and status, charts of the hour, and a CSV of the filtered log", async () => {
		await page.getByTestId("logs-charts").locator("figure").first().waitFor();
		expect(await page.getByTestId("logs-charts").locator("figure").count()).toBe(4);
		await shot("logs");

		await page.getByTestId("logs-api-key").selectOption({ label: "ci" });
		await page.locator('[data-testid="log-row"]').first().waitFor();
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 1);
		await expect(page.locator('[data-testid="log-row"]').getAttribute("data-status")).resolves.toBe("error");

		const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("logs-export").click()]);
		const csv = fs
			.readFileSync((await download.path())!, "utf8")
			.trim()
			.split("\r\n");
		expect(csv).toHaveLength(2);
		expect(csv[1]).toContain(",error,");
		expect(csv[1]).toContain("ci");
		await page.getByTestId("logs-reset").click();
	});

	test("rate limits show what is used this minute", async () => {
		await open("ai-rate-limits", "Rate limits");
		const cell = page.locator(
			'[data-testid="limit-row"][data-scope="organization"] [data-testid="limit-requests-usage"]'
		);
		await cell.filter({ hasText: "2 / 100" }).waitFor();
		await shot("rate-limits");
		expect(ui!.pageErrors).toEqual([]);
	});
});
