// The workflow UI in headless Chromium, on the embedded platform (one process, PGlite): a workflow is built in the
// editor — a webhook dragged from the palette, others added by their buttons, an edge drawn from handle to handle,
// a condition's true branch drawn from its "true" handle and its false branch added from the side panel — a save
// with a webhook lacking its URL shows the server's 422 on that node and beside its field, the fixed graph is saved
// as version 1 and run with an input; the run view colours the nodes live (both parallel webhooks and the true
// branch succeed, the false branch is skipped) without a reload; the run is in the history; a second save makes
// version 2 and version 1 opens read-only. Skipped when no Chromium is installed, unless REQUIRE_BROWSER=1.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signUp, startUiPlatform } from "../helpers/browser";
import { WebhookReceiver } from "../execution/webhook-receiver";

const owner = {
	name: "Katherine Johnson",
	email: `katherine-workflow-${Date.now()}@example.com`,
	password: "correct horse battery"
};

describeWithBrowser()("workflow UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const hook = new WebhookReceiver();
	const node = (id: string) => page.locator(`.wf-node[data-node-id="${id}"]`);
	const handle = (id: string, type: "source" | "target", handleId?: string) =>
		page.locator(
			`.vue-flow__handle.${type}[data-nodeid="${id}"]${handleId ? `[data-handleid="${handleId}"]` : ""}`
		);
	const panel = () => page.getByTestId("node-panel");

	// Presses on one handle and lets go on another, in small moves as a hand would.
	async function drawEdge(from: ReturnType<typeof handle>, to: ReturnType<typeof handle>) {
		const a = (await from.boundingBox())!;
		const b = (await to.boundingBox())!;
		await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
		await page.mouse.down();
		await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 12 });
		await page.mouse.up();
	}

	async function configure(id: string, title: string, url?: string) {
		await node(id).click();
		await panel().getByLabel("Title").fill(title);
		if (url !== undefined) await panel().getByLabel("URL").fill(url);
	}

	beforeAll(async () => {
		await hook.start();
		ui = await startUiPlatform("workflow-browser", {
			timeoutMs: 20_000,
			env: { EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1", EXECUTION_POLL_MS: "200" }
		});
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await hook.stop();
	});

	test("build, save (a 422 first), run and watch a workflow with parallel webhooks and a condition", async () => {
		await signUp(page, base, owner);
		await page.getByTestId("nav-workflow").click();
		await page.getByTestId("workflow-new").click();

		await page.getByTestId("wf-name").fill("Nightly sync");
		await page.getByTestId("wf-input-add").click();
		await page.getByTestId("wf-input").getByLabel("Name").fill("mode");

		// One kind dragged onto the canvas, the rest added with the palette's buttons (the keyboard's way).
		await page
			.getByTestId("palette-http_webhook")
			.dragTo(page.locator(".vue-flow__pane"), { targetPosition: { x: 130, y: 75 } });
		await node("webhook_1").waitFor();
		await page.getByTestId("palette-http_webhook").click();
		await page.getByTestId("palette-condition").click();
		await page.getByTestId("palette-http_webhook").click();
		await page.getByTestId("palette-http_webhook").click();
		await node("webhook_4").waitFor();
		expect(await page.locator(".wf-node").count()).toBe(5);

		// Edges: two by dragging handles (one of them the condition's "true"), two from the side panel.
		await drawEdge(handle("webhook_1", "source"), handle("condition_1", "target"));
		await drawEdge(handle("condition_1", "source", "true"), handle("webhook_3", "target"));
		await page.locator(".vue-flow__edge").nth(1).waitFor();

		await configure("webhook_2", "Fetch B", `${hook.url}/b`);
		await panel().getByTestId("connect-target").selectOption("condition_1");
		await panel().getByTestId("connect-add").click();
		await configure("condition_1", "Fast mode?");
		await panel().getByLabel("Left").fill("{{inputs.mode}}");
		await panel().getByLabel("Operator").selectOption("eq");
		await panel().getByLabel("Right").fill("fast");
		await panel().getByTestId("connect-target").selectOption("webhook_4");
		await panel().getByTestId("connect-branch").selectOption("false");
		await panel().getByTestId("connect-add").click();
		await expect(panel().getByTestId("node-edge").allInnerTexts()).resolves.toEqual([
			expect.stringMatching(/webhook_3\s*true/i),
			expect.stringMatching(/webhook_4\s*false/i)
		]);
		await configure("webhook_3", "Notify", `${hook.url}/yes`);
		await configure("webhook_4", "Fallback", `${hook.url}/no`);
		await configure("webhook_1", "Fetch A");
		expect(await page.locator(".vue-flow__edge").count()).toBe(4);

		// webhook_1 has no URL: the server's 422 marks the node and shows beside its URL field.
		await page.getByTestId("wf-save").click();
		await node("webhook_1").locator(".wf-node__error").waitFor();
		await node("webhook_1").click();
		await expect(panel().getByLabel("URL").getAttribute("aria-invalid")).resolves.toBe("true");
		await panel().locator(".field--invalid .field__error").waitFor();
		expect(page.url()).toMatch(/\/workflows\/new$/);

		await panel().getByLabel("URL").fill(`${hook.url}/a`);
		await page.getByTestId("wf-save").click();
		await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
		await page.getByTestId("wf-title").filter({ hasText: "Nightly sync" }).filter({ hasText: "v1" }).waitFor();
		// The saved graph came back with its nodes and edges.
		await page.locator(".wf-node").nth(4).waitFor();
		expect(await page.locator(".wf-node").count()).toBe(5);
		expect(await page.locator(".vue-flow__edge").count()).toBe(4);

		// Run with an input; the run view follows it live, in the same page (no reload).
		await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
		await page.getByTestId("wf-run").click();
		await page.getByTestId("run-input-mode").fill("fast");
		await page.getByTestId("run-start").click();
		await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
		for (const id of ["webhook_1", "webhook_2", "condition_1", "webhook_3"])
			await page.locator(`.wf-node[data-node-id="${id}"][data-status="succeeded"]`).waitFor();
		await page.locator('.wf-node[data-node-id="webhook_4"][data-status="skipped"]').waitFor();
		await page.locator(".run-status", { hasText: "run completed" }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "workflow-run.png"), fullPage: true });
		expect(hook.received.map(r => r.path).sort()).toEqual(["/a", "/b", "/yes"]);
		await expect(page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).resolves.toBe(true);
		// The sidebar still marks Workflows on a run's page, which no sidebar entry names.
		await expect(page.getByTestId("nav-workflow").getAttribute("aria-current")).resolves.toBe("page");

		// The history lists the run with its version and trigger.
		await page.getByRole("link", { name: /Nightly sync/ }).click();
		await page.getByTestId("tab-runs").click();
		const row = page.getByTestId("run-row").first();
		await row.filter({ hasText: "completed" }).waitFor();
		await expect(row.innerText()).resolves.toMatch(/v1[\s\S]*manual/);

		// The list shows the workflow with its newest run.
		await page.getByTestId("nav-workflow").click();
		await page
			.getByTestId("workflow-row")
			.filter({ hasText: "Nightly sync" })
			.getByTestId("workflow-last-run")
			.filter({ hasText: "completed" })
			.waitFor();
		await page.getByRole("link", { name: "Nightly sync" }).click();

		// A changed graph saves as version 2; version 1 opens read-only.
		await page.getByTestId("tab-editor").click();
		await configure("webhook_4", "Fallback hook");
		await page.getByTestId("wf-save").click();
		await page.getByTestId("wf-title").filter({ hasText: "v2" }).waitFor();
		await page.getByTestId("wf-version").selectOption("1");
		await page.getByTestId("wf-viewing").waitFor();
		await expect(page.getByTestId("wf-save").count()).resolves.toBe(0);
		await node("webhook_4")
			.locator(".wf-node__title", { hasText: /^Fallback$/ })
			.waitFor();

		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
