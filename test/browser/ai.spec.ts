// The AI UI as people use it: the built web UI served by an embedded platform process, driven in headless Chromium,
// with an OpenAI-compatible fake upstream on 127.0.0.1. An owner keeps the upstream key in the vault, creates a
// provider that names that secret and a deployment "gpt-ui" on it, chats in the playground (the answer streams in
// token by token over the socket; Stop cancels upstream), meets a rate limit, edits a fallback chain by keyboard,
// and finds every request in the completion log with its tokens and cost.
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signUp, startUiPlatform, pageApi } from "../helpers/browser";
import { FakeOpenAI } from "../helpers/fake-openai";

const stamp = Date.now();
const owner = { name: "Ada Lovelace", email: `ada-ai-${stamp}@example.com`, password: "correct horse battery" };
const UPSTREAM_KEY = "sk-fake-upstream-KEY-7f3a9c21";
const FAKE_MODEL = "fake-model-1";
const PRICES = { input: 2.5, output: 10 };

describeWithBrowser()("AI UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const up = new FakeOpenAI();
	// Request ids of the playground's answers, by what happened to them.
	const requests: Record<string, string> = {};

	async function shot(name: string) {
		await page.evaluate(() =>
			document.querySelectorAll<HTMLButtonElement>('[data-testid="toast"] button').forEach(b => b.click())
		);
		await page.getByTestId("toast").first().waitFor({ state: "detached" });
		await page.screenshot({ path: path.join(ARTIFACTS, `ai-${name}.png`), fullPage: true });
	}
	const toast = (text: string | RegExp) => page.getByTestId("toast").filter({ hasText: text }).first().waitFor();
	const lastAnswer = () => page.locator('[data-testid="chat-message"][data-role="assistant"]').last();

	async function open(nav: string, title: string) {
		await page.getByTestId(`nav-${nav}`).click();
		await page.getByTestId("page-title").filter({ hasText: title }).waitFor();
	}

	// The REST API as the signed-in page calls it.
	const api = (method: string, url: string, body?: unknown) => pageApi(page, method, url, body);

	async function ask(text: string) {
		const before = await page.locator('[data-testid="chat-message"][data-role="assistant"]').count();
		await page.getByTestId("chat-input").fill(text);
		await page.getByTestId("chat-input").press("Enter");
		await page.locator('[data-testid="chat-message"][data-role="assistant"]').nth(before).waitFor();
		return lastAnswer();
	}

	beforeAll(async () => {
		await up.start();
		// The fake upstream is on loopback, which AI providers may reach only when the operator allows it.
		ui = await startUiPlatform("ai-browser", { timeoutMs: 15_000, env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" } });
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await up.stop();
	});

	test("the owner signs up and keeps the upstream key as a secret in production", async () => {
		await signUp(page, base, owner);

		// The AI section is in the sidebar for an owner.
		for (const nav of [
			"ai-playground",
			"ai-logs",
			"ai-providers",
			"ai-routing",
			"ai-presets",
			"ai-rate-limits",
			"ai-settings"
		])
			await page.getByTestId(`nav-${nav}`).waitFor();

		await open("secrets", "Secrets");
		await page.locator('[data-testid="env-tab"][data-env="production"]').click();
		await page.getByTestId("secrets-empty").waitFor();
		await page.getByTestId("secret-new").click();
		const dialog = page.getByTestId("secret-form-dialog");
		await dialog.getByTestId("secret-name").fill("FAKE_OPENAI_KEY");
		await dialog.getByTestId("secret-value-input").fill(UPSTREAM_KEY);
		await dialog.getByTestId("secret-description").fill("Key of the test upstream");
		await dialog.getByTestId("secret-save").click();
		await toast("Secret created");
		await page.locator('[data-testid="secret-row"][data-name="FAKE_OPENAI_KEY"]').waitFor();
	});

	test("creates a provider whose key is chosen from the vault by name, and a deployment gpt-ui on it", async () => {
		await open("ai-providers", "Providers & models");
		await page.getByTestId("providers-empty").waitFor();
		await page.getByTestId("provider-new").click();
		const dialog = page.getByTestId("provider-form-dialog");
		await dialog.getByTestId("provider-name").fill("fake-upstream");
		await dialog.getByTestId("provider-base-url").fill(up.baseUrl);
		expect(await dialog.getByTestId("provider-key-environment").inputValue()).toBe("production");
		// The key is a choice among secret names: no field takes a key, and no value is ever on the page.
		const secretSelect = dialog.getByTestId("provider-key-secret");
		await secretSelect.locator("option", { hasText: "FAKE_OPENAI_KEY" }).waitFor({ state: "attached" });
		expect(await secretSelect.evaluate(el => el.tagName)).toBe("SELECT");
		const options = await secretSelect.locator("option").allTextContents();
		expect(options).toEqual(["No API key", "FAKE_OPENAI_KEY"]);
		expect(await dialog.locator('input[type="password"]').count()).toBe(0);
		await secretSelect.selectOption("FAKE_OPENAI_KEY");
		await dialog.getByTestId("provider-timeout").fill("10000");
		// A credential header cannot take a typed value: it takes a secret, chosen like the key.
		await dialog.getByTestId("provider-header-add").click();
		await dialog.getByTestId("provider-header-name").fill("X-Goog-Api-Key");
		await dialog.getByTestId("provider-header-value").fill("typed-in-key");
		await dialog.locator(".field__error").filter({ hasText: "Credentials belong in a secret" }).waitFor();
		expect(await dialog.getByTestId("provider-save").isDisabled()).toBe(true);
		await dialog.getByTestId("provider-header-source").selectOption("FAKE_OPENAI_KEY");
		expect(await dialog.getByTestId("provider-header-value").count()).toBe(0); // no value field for it any more
		expect(await dialog.locator(".field__error").count()).toBe(0);
		// Other headers are typed in.
		await dialog.getByTestId("provider-header-add").click();
		await dialog.getByTestId("provider-header-name").nth(1).fill("X-Test-Client");
		await dialog.getByTestId("provider-header-value").fill("coder-ide-browser-test");
		expect(await page.content()).not.toContain(UPSTREAM_KEY);
		await shot("1-provider-form");
		await dialog.getByTestId("provider-save").click();
		await toast("Provider created");

		const card = page.locator('[data-testid="provider-card"][data-name="fake-upstream"]');
		await card.waitFor();
		expect(await card.getByTestId("provider-key").textContent()).toContain("production/FAKE_OPENAI_KEY");
		expect(await card.getByTestId("provider-url").textContent()).toBe(up.baseUrl);
		expect(await card.getByTestId("provider-headers").textContent()).toBe(
			"X-Test-Client, X-Goog-Api-Key (secret FAKE_OPENAI_KEY)"
		);
		await card.getByTestId("deployments-empty").waitFor();

		await card.getByTestId("deployment-new").click();
		const dep = page.getByTestId("deployment-form-dialog");
		await dep.getByTestId("deployment-name").fill("gpt-ui");
		await dep.getByTestId("deployment-provider-model").fill(FAKE_MODEL);
		await dep.getByTestId("deployment-context-window").fill("128000");
		await dep.getByTestId("deployment-cap-tools").check();
		await dep.getByTestId("deployment-cap-json").check();
		await dep.getByTestId("deployment-input-price").fill(String(PRICES.input));
		await dep.getByTestId("deployment-output-price").fill(String(PRICES.output));
		await dep.getByTestId("deployment-tags").fill("fast, test");
		await dep.getByTestId("deployment-save").click();
		await toast("Deployment added");
		const row = card.locator('[data-testid="deployment-row"][data-name="gpt-ui"]');
		await row.waitFor();
		const text = (await row.textContent()) ?? "";
		for (const s of [FAKE_MODEL, "Tools", "JSON", "fast", "128,000"]) expect(text).toContain(s);
		expect(await row.getByTestId("deployment-input-price").textContent()).toBe("$2.50");
		expect(await row.getByTestId("deployment-output-price").textContent()).toBe("$10");
		await shot("2-providers");

		// Saved through REST as the names only; the key itself is still in the vault alone.
		const providers = await page.evaluate(async () => {
			const session = JSON.parse(localStorage.getItem("coder-ide.session")!);
			const res = await fetch("/api/ai/providers", {
				headers: {
					authorization: `Bearer ${session.accessToken}`,
					"x-organization-id": localStorage.getItem("coder-ide.organization")!
				}
			});
			return res.json();
		});
		expect(providers.rows).toHaveLength(1);
		expect(providers.rows[0]).toMatchObject({
			api_key_secret: "FAKE_OPENAI_KEY",
			api_key_environment: "production",
			headers: { "X-Goog-Api-Key": { secret: "FAKE_OPENAI_KEY" }, "X-Test-Client": "coder-ide-browser-test" }
		});
		expect(JSON.stringify(providers)).not.toContain(UPSTREAM_KEY);
	});

	test("the playground streams the answer token by token over the socket", async () => {
		up.set(FAKE_MODEL, { chunkDelayMs: 120 });
		await open("ai-playground", "Playground");
		await page.locator('[data-testid="chat-model"] option[value="gpt-ui"]').waitFor({ state: "attached" });
		expect(await page.getByTestId("chat-model").inputValue()).toBe("gpt-ui");
		await page.getByTestId("chat-temperature").fill("0.3");
		expect(await page.getByTestId("chat-temperature-value").textContent()).toBe("0.3");

		const question = "hello from the browser test, please stream this back";
		const expected = `echo(${FAKE_MODEL}): ${question}`;
		const answer = await ask(question);
		// Mid-stream: part of the answer is there, not all of it, and Stop is offered.
		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="streaming"]').waitFor();
		const partial = (await answer.getByTestId("chat-message-text").textContent()) ?? "";
		expect(partial.length).toBeGreaterThan(0);
		expect(expected.startsWith(partial)).toBe(true);
		expect(partial.length).toBeLessThan(expected.length);
		await page.getByTestId("chat-stop").waitFor();
		await shot("3-streaming");

		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="done"]').waitFor();
		expect(await answer.getByTestId("chat-message-text").textContent()).toBe(expected);
		expect(await answer.getByTestId("chat-message-meta").textContent()).toMatch(/\d+ in · \d+ out tokens/);
		requests.success = (await answer.getAttribute("data-request-id"))!;
		expect(requests.success).toMatch(/^[0-9a-f-]{36}$/);
		await page.getByTestId("chat-send").waitFor();

		// The upstream got the key from the vault, the model's own id, the temperature and the extra header.
		const seen = up.requests.filter(r => r.path === "/v1/chat/completions").pop()!;
		expect(seen.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
		expect(seen.headers["x-goog-api-key"]).toBe(UPSTREAM_KEY);
		expect(seen.headers["x-test-client"]).toBe("coder-ide-browser-test");
		expect(seen.body).toMatchObject({
			model: FAKE_MODEL,
			stream: true,
			temperature: 0.3,
			messages: [{ role: "user", content: question }]
		});
		await shot("4-answered");
	});

	test("Stop cancels the answer upstream and keeps what arrived", async () => {
		up.set(FAKE_MODEL, { chunkDelayMs: 250, content: Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ") });
		const answer = await ask("tell me a long story");
		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="streaming"]').waitFor();
		// By keyboard: Escape in the message box stops the answer.
		await page.getByTestId("chat-input").press("Escape");
		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="stopped"]').waitFor();
		const kept = (await answer.getByTestId("chat-message-text").textContent()) ?? "";
		expect(kept).toMatch(/^word0/);
		expect(kept).not.toContain("word59");
		requests.cancelled = (await answer.getAttribute("data-request-id"))!;
		// The upstream request was aborted, not left running.
		const seen = up.requests.filter(r => r.path === "/v1/chat/completions").pop()!;
		const deadline = Date.now() + 5000;
		while (!seen.aborted && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
		expect(seen.aborted).toBe(true);
		expect(seen.finished).toBe(false);
		await page.waitForTimeout(600);
		expect(await answer.getByTestId("chat-message-text").textContent()).toBe(kept);
		await shot("5-stopped");

		// Stopped before the first token (the server tells the request's id only with it): cancelled all the same.
		up.set(FAKE_MODEL, { delayMs: 1500, chunkDelayMs: 100 });
		const early = await ask("are you there?");
		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="waiting"]').waitFor();
		await page.getByTestId("chat-stop").click();
		await page
			.locator('[data-testid="chat-message"][data-role="assistant"][data-status="stopped"]')
			.last()
			.waitFor();
		await page.getByTestId("chat-send").waitFor();
		const waiting = up.requests.filter(r => r.path === "/v1/chat/completions").pop()!;
		const until = Date.now() + 8000;
		while (!waiting.aborted && Date.now() < until) await new Promise(r => setTimeout(r, 100));
		expect(waiting.aborted).toBe(true);
		expect(await early.getByTestId("chat-message-text").count()).toBe(0);
		requests.early = (await early.getAttribute("data-request-id"))!;
		expect(requests.early).toMatch(/^[0-9a-f-]{36}$/);
	});

	test("a model rate limit set in the UI refuses the second request with a readable error", async () => {
		up.set(FAKE_MODEL, {});
		await open("ai-rate-limits", "Rate limits");
		await page.getByTestId("limits-empty").waitFor();
		await page.getByTestId("limit-new").click();
		const dialog = page.getByTestId("limit-dialog");
		await dialog.getByTestId("limit-scope").selectOption("model");
		expect(await dialog.getByTestId("limit-save").isDisabled()).toBe(true);
		await dialog.getByTestId("limit-model").fill("gpt-ui");
		await dialog.getByTestId("limit-rpm").fill("1");
		await dialog.getByTestId("limit-save").click();
		await toast("Rate limit added");
		await page.locator('[data-testid="limit-row"][data-scope="model"]').filter({ hasText: "gpt-ui" }).waitFor();

		await open("ai-playground", "Playground");
		// The conversation is still there after visiting another page.
		expect(await page.locator('[data-testid="chat-message"][data-role="assistant"]').count()).toBe(3);
		await page.getByTestId("chat-clear").click();
		expect(await page.getByTestId("chat-message").count()).toBe(0);

		const first = await ask("one");
		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="done"]').waitFor();
		expect(await first.getByTestId("chat-message-text").textContent()).toBe(`echo(${FAKE_MODEL}): one`);
		const second = await ask("two");
		const error = second.getByTestId("chat-error");
		await error.waitFor();
		expect(await error.getAttribute("data-code")).toBe("RATE_LIMITED");
		expect(await error.getByTestId("chat-error-title").textContent()).toBe("Rate limited");
		expect(await error.textContent()).toMatch(
			/The model's rate limit for gpt-ui is used up for this minute\. Try again in \d+ s\./
		);
		await second.getByTestId("chat-retry").waitFor();
		await shot("6-rate-limited");

		// Deleting the limit (confirmed) lets requests through again.
		await open("ai-rate-limits", "Rate limits");
		await page.locator('[data-testid="limit-row"][data-scope="model"]').getByTestId("limit-delete").click();
		await page.getByTestId("confirm-button").click();
		await toast("Rate limit deleted");
		await page.getByTestId("limits-empty").waitFor();
	});

	test("a fallback chain is created and reordered by keyboard", async () => {
		await open("ai-routing", "Routing & fallbacks");
		await page.getByTestId("chains-empty").waitFor();
		// Fallbacks are picked among the organization's deployments: three more on the same provider.
		const provider = (await api("GET", "/api/ai/providers")).body.rows[0];
		for (const name of ["backup-a", "backup-b", "backup-c"])
			expect(
				(await api("POST", "/api/ai/deployments", { provider_id: provider.id, name, provider_model: name }))
					.status
			).toBe(200);
		await page.reload();
		await page.getByTestId("chains-empty").waitFor();
		await page.getByTestId("chain-new").click();
		const dialog = page.getByTestId("chain-dialog");
		// Pickers, not free text: only deployed names are offered, and the model itself is not among its fallbacks.
		expect(await dialog.getByTestId("chain-model").evaluate(el => el.tagName)).toBe("SELECT");
		await dialog.getByTestId("chain-model").selectOption("gpt-ui");
		const offered = await dialog.getByTestId("chain-add-input").locator("option").allTextContents();
		expect(offered.slice(1)).toEqual(["backup-a", "backup-b", "backup-c"]);
		for (const m of ["backup-a", "backup-b", "backup-c"]) {
			await dialog.getByTestId("chain-add-input").selectOption(m);
			await dialog.getByTestId("chain-add").click();
		}
		const order = () =>
			dialog.getByTestId("chain-item").evaluateAll(items => items.map(i => i.getAttribute("data-name")));
		expect(await order()).toEqual(["backup-a", "backup-b", "backup-c"]);
		// "Move up" on backup-c, then Alt+ArrowUp with focus still on it: it is first.
		await dialog.locator('[data-testid="chain-item"][data-name="backup-c"]').getByTestId("chain-up").click();
		expect(await order()).toEqual(["backup-a", "backup-c", "backup-b"]);
		expect(
			await page.evaluate(() =>
				document.activeElement?.closest("[data-testid=chain-item]")?.getAttribute("data-name")
			)
		).toBe("backup-c");
		await page.keyboard.press("Alt+ArrowUp");
		expect(await order()).toEqual(["backup-c", "backup-a", "backup-b"]);
		await dialog.locator('[data-testid="chain-item"][data-name="backup-b"]').getByTestId("chain-remove").click();
		expect(await order()).toEqual(["backup-c", "backup-a"]);
		await dialog.getByTestId("chain-timeout").fill("2000");
		await shot("7-chain-editor");
		await dialog.getByTestId("chain-save").click();
		await toast("Fallback chain created");
		const row = page.locator('[data-testid="chain-row"][data-model="gpt-ui"]');
		await row.waitFor();
		expect(await row.getByTestId("chain-step").allTextContents()).toEqual(["backup-c", "backup-a"]);
		expect(await row.textContent()).toContain("first token within 2 s");
	});

	test("the completion log lists the requests with tokens and cost, and filters them", async () => {
		await open("ai-logs", "Completion log");
		await page.getByTestId("logs-table").waitFor();
		const rows = page.getByTestId("log-row");
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 5);
		const statuses = await rows.evaluateAll(rs => rs.map(r => r.getAttribute("data-status")));
		// Newest first: the refused request, the one before it, the two stopped ones, the first answer.
		expect(statuses).toEqual(["rate_limited", "success", "cancelled", "cancelled", "success"]);

		const ok = page.locator(`[data-testid="log-row"][data-request-id="${requests.success}"]`);
		expect(await ok.getByTestId("log-model").textContent()).toBe("gpt-ui");
		expect(await ok.getByTestId("log-status").textContent()).toBe("Success");
		const prompt = Number((await ok.getByTestId("log-prompt-tokens").textContent())!.replace(/,/g, ""));
		const completion = Number((await ok.getByTestId("log-completion-tokens").textContent())!.replace(/,/g, ""));
		expect(prompt).toBeGreaterThan(0);
		expect(completion).toBeGreaterThan(0);
		const expectedCost = (prompt * PRICES.input + completion * PRICES.output) / 1e6;
		expect(Number(await ok.getByTestId("log-cost").getAttribute("data-cost"))).toBeCloseTo(expectedCost, 12);
		expect(await ok.getByTestId("log-cost").textContent()).toMatch(/^\$0\.0+[1-9]\d*$/);
		for (const id of [requests.cancelled, requests.early])
			expect(
				await page.locator(`[data-testid="log-row"][data-request-id="${id}"]`).getAttribute("data-status")
			).toBe("cancelled");

		// Totals add up the rows.
		expect(await page.getByTestId("logs-total-requests").textContent()).toBe("5");
		const costs = await rows.evaluateAll(rs =>
			rs.map(r => Number(r.querySelector('[data-testid="log-cost"]')!.getAttribute("data-cost")))
		);
		expect(Number(await page.getByTestId("logs-total-cost").getAttribute("data-cost"))).toBeCloseTo(
			costs.reduce((a, b) => a + b, 0),
			12
		);
		expect(await page.getByTestId("logs-total-cost").textContent()).not.toBe("$0.00");
		await page.getByTestId("logs-retention").filter({ hasText: "Kept for good" }).waitFor();
		await shot("8-log");

		// By status.
		await page.getByTestId("logs-status").selectOption("rate_limited");
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 1);
		expect(await rows.first().getAttribute("data-status")).toBe("rate_limited");
		expect(await rows.first().getByTestId("log-error").textContent()).toContain("rate limit model:gpt-ui");
		expect(await page.getByTestId("logs-total-requests").textContent()).toBe("1");
		await page.getByTestId("logs-status").selectOption("");
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 5);

		// By date: today has them all, tomorrow none.
		const day = (offset: number) =>
			page.evaluate(o => {
				const d = new Date();
				d.setDate(d.getDate() + o);
				return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
			}, offset);
		await page.getByTestId("logs-from").fill(await day(0));
		await page.getByTestId("logs-to").fill(await day(0));
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 5);
		await page.getByTestId("logs-from").fill(await day(1));
		await page.getByTestId("logs-to").fill(await day(1));
		await page.getByTestId("logs-empty").filter({ hasText: "No requests match these filters" }).waitFor();
		expect(await page.getByTestId("logs-total-requests").textContent()).toBe("0");
		await page.getByTestId("logs-reset").click();
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 5);

		// By model (every request so far was for gpt-ui).
		await page.getByTestId("logs-model").selectOption("gpt-ui");
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 5);
	});

	test("an answer served by a fallback is labelled with the model that served it and the path it took", async () => {
		up.set(FAKE_MODEL, { status: 500 });
		await open("ai-playground", "Playground");
		await page.getByTestId("chat-model").selectOption("gpt-ui");
		const answer = await ask("who answers?");
		await answer.and(page.locator('[data-status="done"]')).waitFor();
		expect(await answer.getByTestId("chat-message-text").textContent()).toBe("echo(backup-c): who answers?");
		expect(await answer.getByTestId("chat-meta-served").textContent()).toContain("backup-c");
		expect(await answer.getByTestId("chat-fallback-path").textContent()).toMatch(
			/gpt-ui\S*server_error → backup-c/
		);
		await shot("7b-fallback-answer");
		up.set(FAKE_MODEL, {});
	});

	test("routing rules, presets and settings are edited, and a preset becomes a model of the playground", async () => {
		await open("ai-routing", "Routing & fallbacks");
		await page.getByTestId("rules-empty").waitFor();
		expect(await page.getByTestId("rule-model").locator("option").allTextContents()).toEqual([
			"Choose a model",
			"backup-a",
			"backup-b",
			"backup-c",
			"gpt-ui"
		]);
		await page.getByTestId("rule-model").selectOption("gpt-ui");
		await page.getByTestId("rule-new-strategy").selectOption("cost");
		await page.getByTestId("rule-add").click();
		await toast("Routing rule added");
		const rule = page.locator('[data-testid="rule-row"][data-model="gpt-ui"]');
		expect(await rule.getByTestId("rule-strategy").inputValue()).toBe("cost");
		await rule.getByTestId("rule-strategy").selectOption("latency");
		await toast("Routing rule saved");
		expect(await rule.getByTestId("model-missing").count()).toBe(0);
		await shot("9-routing");

		// A rule outlives the deployment it names: the page says it serves nothing.
		const listed = (await api("GET", "/api/ai/deployments")).body;
		const base = (listed.rows ?? listed).find((d: any) => d.name === "gpt-ui");
		const temp = await api("POST", "/api/ai/deployments", {
			provider_id: base.provider_id,
			name: "short-lived",
			provider_model: "short-lived"
		});
		expect((await api("POST", "/api/ai/routing-rules", { model: "short-lived", strategy: "cost" })).status).toBe(
			200
		);
		expect((await api("DELETE", `/api/ai/deployments/${temp.body.id}`)).status).toBe(200);
		await page.reload();
		const orphan = page.locator('[data-testid="rule-row"][data-model="short-lived"]');
		await orphan.getByTestId("model-missing").waitFor();
		await orphan.getByTestId("rule-delete").click();
		await page.getByTestId("confirm-button").click();
		await orphan.waitFor({ state: "detached" });

		await open("ai-presets", "Presets");
		await page.getByTestId("presets-empty").waitFor();
		await page.getByTestId("preset-new").click();
		const dialog = page.getByTestId("preset-dialog");
		// A preset named like a deployed model would take its requests over: only when ticked, and then shown.
		await dialog.getByTestId("preset-name").fill("backup-a");
		await dialog.getByTestId("preset-model").selectOption("gpt-ui");
		await dialog.getByTestId("preset-collision").waitFor();
		expect(await dialog.getByTestId("preset-save").isDisabled()).toBe(true);
		await dialog.getByTestId("preset-overrides").check();
		await shot("10a-preset-takeover");
		await dialog.getByTestId("preset-save").click();
		await toast("Preset created");
		const takeover = page.locator('[data-testid="preset-row"][data-name="backup-a"]');
		await takeover.getByTestId("preset-overrides-badge").waitFor();
		await shot("10b-preset-overrides-badge");
		await takeover.getByTestId("preset-delete").click();
		await page.getByTestId("confirm-button").click();
		await toast("Preset deleted");
		await page.getByTestId("presets-empty").waitFor();
		await page.getByTestId("preset-new").click();
		await dialog.getByTestId("preset-name").fill("reviewer");
		await dialog.getByTestId("preset-model").selectOption("gpt-ui");
		await dialog.getByTestId("preset-temperature").fill("0");
		await dialog.getByTestId("preset-max-tokens").fill("512");
		await dialog.getByTestId("preset-system-prompt").fill("You review code and answer briefly.");
		await dialog.getByTestId("preset-format").selectOption("custom");
		await dialog.getByTestId("preset-format-custom").fill("{not json");
		await dialog.locator(".field__error").filter({ hasText: "not valid JSON" }).waitFor();
		expect(await dialog.getByTestId("preset-save").isDisabled()).toBe(true);
		await dialog.getByTestId("preset-format").selectOption("json_object");
		await dialog.getByTestId("preset-save").click();
		await toast("Preset created");
		const preset = page.locator('[data-testid="preset-row"][data-name="reviewer"]');
		await preset.waitFor();
		for (const s of ["gpt-ui", "512", "You review code", "JSON object"])
			expect(await preset.textContent()).toContain(s);
		await shot("10-presets");
		// The row's Edit opens the preset as saved; a change shows in the row.
		expect(await preset.getByTestId("preset-edit").textContent()).toContain("Edit reviewer");
		await preset.getByTestId("preset-edit").click();
		expect(await dialog.getByTestId("preset-name").inputValue()).toBe("reviewer");
		await dialog.getByTestId("preset-max-tokens").fill("640");
		await dialog.getByTestId("preset-save").click();
		await page.waitForFunction(() =>
			document.querySelector('[data-testid="preset-row"][data-name="reviewer"]')?.textContent?.includes("640")
		);

		await open("ai-settings", "AI settings");
		const save = page.getByTestId("ai-settings-save");
		expect(await page.getByTestId("ai-store-content").isChecked()).toBe(false);
		expect(await save.isDisabled()).toBe(true);
		await page.getByTestId("ai-store-content").check();
		await page.getByTestId("ai-cooldown").fill("10");
		await page.getByTestId("ai-cache-ttl").fill("7200");
		expect(await page.getByTestId("ai-log-retention").inputValue()).toBe(""); // kept for good by default
		await page.getByTestId("ai-log-retention").fill("90");
		await save.click();
		await toast("AI settings saved");
		await page.reload();
		await page.getByTestId("ai-settings-form").waitFor();
		expect(await page.getByTestId("ai-store-content").isChecked()).toBe(true);
		expect(await page.getByTestId("ai-cooldown").inputValue()).toBe("10");
		expect(await page.getByTestId("ai-cache-ttl").inputValue()).toBe("7200");
		expect(await page.getByTestId("ai-log-retention").inputValue()).toBe("90");
		await shot("11-settings");
		await open("ai-logs", "Completion log");
		await page.getByTestId("logs-retention").filter({ hasText: "Kept for 90 days" }).waitFor();

		await open("ai-playground", "Playground");
		await page
			.locator('[data-testid="chat-model"] optgroup[label="Presets"] option[value="reviewer"]')
			.waitFor({ state: "attached" });

		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
