// The prompts UI as people use it: the built web UI served by a platform process, driven in headless Chromium, with
// an OpenAI-compatible fake upstream on 127.0.0.1. An owner creates a template with typed variables, watches the
// live preview follow the sample values (a value the version refuses named beside its input) and the editor's
// unpublished changes (a refused message named beside it), publishes a second version, compares the two, moves
// production and rolls it back, runs "Try it" against the fake upstream, and overrides a shared template created by
// the operator (an internal action, called by a broker that joins the platform's namespace over RabbitMQ, as the
// REPL would).
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import crypto from "crypto";
import fs from "fs";
import path from "path";
import amqp from "amqplib";
import { ServiceBroker } from "moleculer";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, signUp, startUiPlatform, pageApi } from "../helpers/browser";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AMQP_URL, describeWith, uniqueNamespace } from "../helpers/infra";
import { TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

const stamp = Date.now();
const owner = { name: "Grace Hopper", email: `grace-prompts-${stamp}@example.com`, password: "correct horse battery" };
const FAKE_MODEL = "fake-model-1";
// A long name must wrap, not widen the page.
const LONG_NAME = "code-review.for-the-platform-team_with-a-very-long-template-name-that-goes-on-and-on";
const SHOTS = path.join(ARTIFACTS, "prompts");

const withBrowser = describeWithBrowser();
(withBrowser === describe ? describeWith(["rabbitmq"]) : withBrowser)("Prompts UI (browser)", () => {
	const NAMESPACE = uniqueNamespace("prompts-ui");
	const CALLER_ID = `caller-${NAMESPACE}`;
	const NODE_ID = `ui-${NAMESPACE}`;
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let caller: ServiceBroker | undefined;
	let page: Page;
	let base = "";
	const up = new FakeOpenAI();
	const cluster = { TRANSPORTER: AMQP_URL, NAMESPACE, JWT_SECRET: TEST_JWT_SECRET, TRANSIT_KEY: TEST_TRANSIT_KEY };

	const toast = (text: string | RegExp) => page.getByTestId("toast").filter({ hasText: text }).first().waitFor();
	const byData = (testid: string, attr: string, value: string | number) =>
		page.locator(`[data-testid="${testid}"][data-${attr}="${value}"]`);

	// The REST API as the signed-in page calls it.
	const api = (method: string, url: string, body?: unknown) => pageApi(page, method, url, body);

	// Both sizes of the page; the phone view must not scroll sideways.
	async function shots(name: string) {
		fs.mkdirSync(SHOTS, { recursive: true });
		await page.evaluate(() =>
			document.querySelectorAll<HTMLButtonElement>('[data-testid="toast"] button').forEach(b => b.click())
		);
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
		const wide =
			phoneWidth > 391
				? await page.evaluate(() =>
						[...document.querySelectorAll<HTMLElement>("body *")]
							.filter(el => {
								const parent = el.parentElement!;
								return (
									el.getBoundingClientRect().right > 392 &&
									parent.getBoundingClientRect().right <= 392 &&
									getComputedStyle(parent).overflowX === "visible"
								);
							})
							.slice(0, 5)
							.map(el => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)
					)
				: [];
		await page.setViewportSize({ width: 1400, height: 900 });
		expect({ phoneWidth, wide }).toEqual({ phoneWidth: 390, wide: [] });
	}

	beforeAll(async () => {
		await up.start();
		// The platform joins a namespace of its own on RabbitMQ, so the test can call the operator's internal actions.
		ui = await startUiPlatform("prompts-browser", {
			timeoutMs: 15_000,
			context: { viewport: { width: 1400, height: 900 } },
			env: {
				...cluster,
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				NODE_ID,
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				AI_LOG_BATCH_MS: "0"
			}
		});
		({ page, base } = ui);
		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...cluster, NODE_ID: CALLER_ID, LOG_LEVEL: "warn" })),
			logger: false
		});
		await caller.start();
		await caller.waitForServices(["prompts"], 20_000);
	}, 240_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		await ui?.stop();
		await up.stop();
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [CALLER_ID, NODE_ID])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	test("the owner signs up; a deployment on the fake upstream serves the organization", async () => {
		await signUp(page, base, owner);
		const provider = await api("POST", "/api/ai/providers", { name: "fake", base_url: up.baseUrl });
		expect(provider.status).toBe(200);
		const dep = await api("POST", "/api/ai/deployments", {
			provider_id: provider.body.id,
			name: "gpt-ui",
			provider_model: FAKE_MODEL
		});
		expect(dep.status).toBe(200);
		await page.getByTestId("nav-prompts").click();
		await page.getByTestId("page-title").filter({ hasText: "Prompts" }).waitFor();
		await page.getByTestId("prompts-empty").waitFor();
		await shots("0-empty");
	});

	test("creates a template with typed variables and a model from the gateway", async () => {
		await page.getByTestId("prompt-new").click();
		const dialog = page.getByTestId("prompt-form-dialog");
		await dialog.getByTestId("prompt-name").fill(LONG_NAME);
		await dialog.getByTestId("prompt-description").fill("Reviews a change in the language it is written in");
		await dialog.getByTestId("prompt-tags").fill("review, code");
		await dialog.getByTestId("message-content").first().fill("You review {{ language }} code.");
		await dialog.getByTestId("message-add").click();
		await dialog
			.getByTestId("message-content")
			.nth(1)
			.fill("Review this:\n{{ code }}{% if strict %}\nBe strict.{% endif %}");
		expect(await dialog.getByTestId("message-role").nth(1).inputValue()).toBe("user");

		const variable = async (i: number, name: string, type: string) => {
			await dialog.getByTestId("variable-add").click();
			const row = dialog.getByTestId("variable-row").nth(i);
			await row.getByTestId("variable-name").fill(name);
			await row.getByTestId("variable-type").selectOption(type);
			return row;
		};
		const language = await variable(0, "language", "enum");
		await language.getByTestId("variable-values").fill("Go, TypeScript, Python");
		await language.getByTestId("variable-values").blur();
		await language.getByTestId("variable-required").check();
		const code = await variable(1, "code", "string");
		await code.getByTestId("variable-required").check();
		await code.getByTestId("variable-maxlength").fill("40");
		await code.getByTestId("variable-maxlength").blur();
		const strict = await variable(2, "strict", "boolean");
		await strict.getByTestId("variable-default").selectOption("false");
		await strict.getByTestId("variable-required").uncheck();

		const model = dialog.getByTestId("model-settings-model");
		await model.locator('option[value="gpt-ui"]').waitFor({ state: "attached" });
		await model.selectOption("gpt-ui");
		await dialog.getByTestId("model-settings-temperature").fill("0.2");
		await dialog.getByTestId("model-settings-temperature").blur();
		expect(await dialog.getByTestId("prompt-label").inputValue()).toBe("production");
		await shots("1-new-template");
		await dialog.getByTestId("prompt-save").click();
		await toast("Template created");
		await page.getByTestId("prompt-title").filter({ hasText: LONG_NAME }).waitFor();
		await byData("label-chip", "label", "production").first().waitFor();
		expect(await byData("label-chip", "label", "production").first().getAttribute("data-version")).toBe("1");

		// Stored as typed.
		const list = await api("GET", "/api/prompts");
		const t = list.body.rows.find((r: any) => r.name === LONG_NAME);
		const detail = await api("GET", `/api/prompts/${t.id}`);
		expect(detail.body.latest).toMatchObject({
			number: 1,
			variables: [
				{ name: "language", type: "enum", required: true, values: ["Go", "TypeScript", "Python"] },
				{ name: "code", type: "string", required: true, maxLength: 40 },
				{ name: "strict", type: "boolean", required: false, default: false }
			],
			model_settings: { model: "gpt-ui", temperature: 0.2 }
		});
	});

	test("the live preview follows the sample values; a refused value is named beside its input", async () => {
		const preview = page.getByTestId("prompt-preview");
		const field = (name: string) => preview.locator(`[data-testid="sample-field"][data-name="${name}"]`);
		// A select for the enum, a checkbox for the boolean, text for the string.
		expect(await field("language").locator("select").count()).toBe(1);
		expect(await field("strict").locator('input[type="checkbox"]').count()).toBe(1);
		await field("code").getByTestId("sample-input").fill("fmt.Println(42)");
		const content = preview.getByTestId("rendered-content");
		await content.filter({ hasText: "fmt.Println(42)" }).waitFor();
		expect(await content.first().textContent()).toBe("You review Go code.");
		await field("language").getByTestId("sample-input").selectOption("TypeScript");
		await content.filter({ hasText: "You review TypeScript code." }).waitFor();
		await field("strict").getByTestId("sample-input").check();
		await content.filter({ hasText: "Be strict." }).waitFor();

		// Longer than its 40 characters: the server's 422 goes beside the code input, and nothing is rendered.
		await field("code").getByTestId("sample-input").fill("x".repeat(41));
		const error = field("code").getByTestId("sample-error");
		await error.waitFor();
		expect(await error.textContent()).toContain("code must be at most 40 characters");
		expect(await preview.getByTestId("sample-error").count()).toBe(1);
		expect(await preview.getByTestId("rendered-messages").count()).toBe(0);
		await shots("2-preview-refused");
		await field("code").getByTestId("sample-input").fill("let a = 1");
		await content.filter({ hasText: "let a = 1" }).waitFor();
		expect(await preview.getByTestId("sample-error").count()).toBe(0);
	});

	test("the preview follows the editor before publishing; a refused message is named beside it", async () => {
		const editor = page.getByTestId("prompt-editor");
		const preview = page.getByTestId("prompt-preview");
		const content = preview.getByTestId("rendered-content");
		expect(await page.getByTestId("editor-publish").isDisabled()).toBe(true);
		await editor.getByTestId("message-content").first().fill("You review {{ language }} code with care.");
		await content.filter({ hasText: "You review TypeScript code with care." }).waitFor();
		// A variable the draft does not declare: the server's 422 goes beside that message, and nothing renders.
		await editor.getByTestId("message-content").nth(1).fill("Review this:\n{{ code }} in {{ repo }}");
		const error = editor.locator('[data-testid="message-row"][data-index="1"]').getByTestId("message-error");
		await error.waitFor();
		expect(await error.textContent()).toContain("uses variable repo, which the version does not declare");
		expect(await editor.getByTestId("message-error").count()).toBe(1);
		await preview.getByTestId("preview-refused").waitFor();
		expect(await preview.getByTestId("rendered-messages").count()).toBe(0);
		await shots("2-preview-draft-refused");
		await editor
			.getByTestId("message-content")
			.nth(1)
			.fill("Review this:\n{{ code }}{% if strict %}\nBe strict.{% endif %}");
		await content.filter({ hasText: "Be strict." }).waitFor();
		expect(await editor.getByTestId("message-error").count()).toBe(0);
		// Nothing was published by previewing.
		const t = (await api("GET", "/api/prompts")).body.rows.find((r: any) => r.name === LONG_NAME);
		expect((await api("GET", `/api/prompts/${t.id}/versions`)).body).toHaveLength(1);
	});

	test("publishes a second version and shows the diff side by side", async () => {
		const editor = page.getByTestId("prompt-editor");
		expect(await page.getByTestId("editor-publish").isDisabled()).toBe(false);
		await editor.getByTestId("message-content").first().fill("You review {{ language }} code carefully.");
		await page
			.getByTestId("prompt-preview")
			.getByTestId("rendered-content")
			.filter({ hasText: "You review TypeScript code carefully." })
			.waitFor();
		await editor.getByTestId("model-settings-temperature").fill("0.7");
		await editor.getByTestId("model-settings-temperature").blur();
		await page.getByTestId("editor-publish").click();
		const dialog = page.getByTestId("publish-dialog");
		await dialog.getByTestId("publish-note").fill("Asks for care");
		await dialog.getByTestId("publish-save").click();
		await toast("Version published");
		await byData("version-row", "version", 2).waitFor();
		expect(await byData("version-row", "version", 2).textContent()).toContain("Asks for care");
		// production stays on v1: publishing moves no label unless asked.
		expect(await byData("label-row", "label", "production").getByTestId("label-version").inputValue()).toBe("1");

		await byData("version-row", "version", 2).getByTestId("version-compare-previous").click();
		const diff = page.getByTestId("version-diff");
		await diff.waitFor();
		const changed = diff.locator('[data-testid="diff-message"][data-change="changed"]');
		await changed.waitFor();
		// The server compares by line: the old line struck out on the left, the new one highlighted on the right.
		expect(await changed.locator('[data-op="removed"]').allTextContents()).toEqual([
			"You review {{ language }} code."
		]);
		expect(await changed.locator('[data-op="added"]').allTextContents()).toEqual([
			"You review {{ language }} code carefully."
		]);
		expect(await diff.locator('[data-testid="diff-message"][data-change="unchanged"]').count()).toBe(1);
		const temperature = diff.locator('[data-testid="diff-setting"][data-key="temperature"]');
		expect(await temperature.getAttribute("data-change")).toBe("changed");
		expect(await temperature.locator("td").allTextContents()).toEqual(["0.2", "0.7"]);
		await shots("3-diff");
	});

	test("moves production to v2 and rolls it back to v1", async () => {
		const row = byData("label-row", "label", "production");
		await row.getByTestId("label-protected").waitFor();
		await row.getByTestId("label-version").selectOption("2");
		await row.getByTestId("label-move").click();
		await toast("Label moved");
		await byData("label-chip", "label", "production").and(page.locator('[data-version="2"]')).first().waitFor();

		await row.getByTestId("label-rollback").click();
		const confirm = page.locator('dialog[open][data-testid="confirm-dialog"]');
		expect(await confirm.textContent()).toContain("v2 back to v1");
		await confirm.getByTestId("confirm-button").click();
		await toast("Rolled back");
		await byData("label-chip", "label", "production").and(page.locator('[data-version="1"]')).first().waitFor();
		// Both moves in the label's history, newest first.
		const moves = page.locator('[data-testid="label-move-row"][data-label="production"]');
		await moves.nth(2).waitFor();
		expect((await moves.first().textContent())?.replace(/\s+/g, " ")).toContain("v2 → v1");
		expect((await moves.nth(1).textContent())?.replace(/\s+/g, " ")).toContain("v1 → v2");
		// Callers rendering production get v1 again.
		const r = await api("POST", "/api/prompts/render", {
			name: LONG_NAME,
			variables: { language: "Go", code: "x" }
		});
		expect(r.body.version.number).toBe(1);
	});

	test("Try it streams a published version's answer token by token through the fake upstream", async () => {
		const full = `echo(${FAKE_MODEL}): Review this:\nlet a = 1\nBe strict.`;
		// Chunks a moment apart, so the answer is seen growing before it is complete.
		up.set(FAKE_MODEL, { chunkDelayMs: 200 });
		await page.getByTestId("try-version").selectOption("2");
		await page.getByTestId("try-run").click();
		const streaming = page.locator('[data-testid="try-answer"][data-state="streaming"]');
		await streaming.waitFor();
		const partial = (await streaming.textContent())!.replace("▍", "");
		expect(partial.length).toBeGreaterThan(0);
		expect(full.startsWith(partial) && partial !== full).toBe(true);
		const answer = page.locator('[data-testid="try-answer"][data-state="done"]');
		await answer.waitFor();
		up.set(FAKE_MODEL, {});
		expect(await answer.textContent()).toBe(full);
		// The gateway's deployment answered (its name), with the upstream's model behind it.
		expect(await page.getByTestId("try-model").textContent()).toBe("gpt-ui");
		await page.getByTestId("try-log-link").waitFor();
		const seen = up.requests.filter(r => r.path === "/v1/chat/completions").pop()!;
		expect(seen.body).toMatchObject({
			model: FAKE_MODEL,
			temperature: 0.7,
			stream: true,
			messages: [{ role: "system", content: "You review TypeScript code carefully." }, { role: "user" }]
		});
		// Recorded as the version's execution when the stream ended, under the request the panel names.
		const requestId = await page.getByTestId("try-request-id").textContent();
		const executions = await api("GET", "/api/prompts/executions");
		expect(executions.body.rows.find((e: any) => e.request_id === requestId)).toMatchObject({
			kind: "complete",
			success: true,
			prompt_tokens: expect.any(Number),
			completion_tokens: expect.any(Number)
		});
		await shots("4-editor");
	});

	test("a shared template is read-only; overriding it opens the organization's own copy", async () => {
		await caller!.call("prompts.createShared", {
			name: "commit-message",
			description: "Conventional commit message",
			messages: [{ role: "user", content: "Write a commit message for: {{ diff }}" }],
			variables: [{ name: "diff", type: "string", required: true }],
			label: "production"
		});
		await page.getByTestId("prompt-back").click();
		const row = byData("prompt-row", "name", "commit-message");
		await row.getByTestId("prompt-shared").waitFor();
		await shots("5-list");
		await row.getByTestId("prompt-link").click();
		await page.getByTestId("prompt-title").filter({ hasText: "commit-message" }).waitFor();
		await page.getByTestId("prompt-shared").waitFor();
		// Nothing of it can be changed here.
		expect(await page.getByTestId("editor-publish").count()).toBe(0);
		expect(await page.getByTestId("label-move").count()).toBe(0);
		await page.getByTestId("prompt-override-create").click();
		await toast("Override created");
		await page.getByTestId("prompt-overrides").waitFor();
		await page.getByTestId("prompt-override").waitFor();
		expect(await page.getByTestId("prompt-shared").count()).toBe(0);
		const editor = page.getByTestId("prompt-editor");
		await editor.getByTestId("message-content").first().fill("Write a short commit message for: {{ diff }}");
		await page.getByTestId("editor-publish").click();
		await page.getByTestId("publish-dialog").getByTestId("publish-save").click();
		await toast("Version published");
		// The organization now renders its own copy; the list shows the override in place of the shared one.
		const r = await api("POST", "/api/prompts/render", { name: "commit-message", variables: { diff: "x" } });
		expect(r.body.template).toMatchObject({ shared: false });
		await page.getByTestId("prompt-back").click();
		await byData("prompt-row", "name", "commit-message").getByTestId("prompt-override").waitFor();
		expect(await byData("prompt-row", "name", "commit-message").getByTestId("prompt-shared").count()).toBe(0);
	});

	test("a member sees production's buttons disabled with the reason, and no Delete", async () => {
		const ben = {
			name: "Ben Member",
			email: `ben-prompts-${stamp}@example.com`,
			password: "correct horse battery"
		};
		const reg = await fetch(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(ben)
		});
		expect(reg.status).toBe(200);
		const org = await page.evaluate(() => localStorage.getItem("coder-ide.organization")!);
		expect(
			(await api("POST", `/api/auth/organizations/${org}/members`, { email: ben.email, role: "member" })).status
		).toBe(200);
		const t = (await api("GET", "/api/prompts")).body.rows.find((r: any) => r.name === LONG_NAME);
		const benPage = ui!.watch(
			await (await ui!.browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage()
		);
		await signIn(benPage, base, ben);
		await benPage.getByTestId("org-switcher").click();
		await benPage.getByTestId("org-option").filter({ hasText: "Grace" }).click();
		await benPage.getByTestId("current-org").filter({ hasText: "Grace" }).waitFor();
		await benPage.goto(`${base}/prompts/${t.id}`);
		const row = benPage.locator('[data-testid="label-row"][data-label="production"]');
		await row.waitFor();
		for (const id of ["label-move", "label-rollback", "label-delete", "label-version"]) {
			expect(await row.getByTestId(id).isDisabled()).toBe(true);
			expect(await row.getByTestId(id).getAttribute("title")).toContain("only admins and owners");
		}
		expect(await benPage.getByTestId("label-new-protected").isDisabled()).toBe(true);
		// A member still publishes, and moves an unprotected label.
		expect(await benPage.getByTestId("editor-publish").count()).toBe(1);
		await benPage.getByTestId("label-new-name").fill("canary");
		await benPage.getByTestId("label-add").click();
		const canary = benPage.locator('[data-testid="label-row"][data-label="canary"]');
		await canary.waitFor();
		expect(await canary.getByTestId("label-move").getAttribute("title")).toBeNull();
		expect(await benPage.getByTestId("prompt-delete").count()).toBe(0);
		await benPage.context().close();
	});

	test("no uncaught errors or CSP violations on the way", () => {
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
