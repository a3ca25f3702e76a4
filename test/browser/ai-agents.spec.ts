// Agent runs in the UI: the built web UI on an embedded platform, in headless Chromium, with a scripted model on
// 127.0.0.1 and the reference MCP server `server-everything` over stdio (its echo tool marked as needing approval).
// A run streams its steps live, pauses for approval, continues when Approve is clicked, and shows in the history; a
// second run is cancelled from the page.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, ROOT, describeWithBrowser, signUp, startUiPlatform, pageApi } from "../helpers/browser";
import { ScriptedModel, toolResults } from "../ai/agent-model";

const stamp = Date.now();
const owner = { name: "Grace Hopper", email: `grace-agents-${stamp}@example.com`, password: "correct horse battery" };
const EVERYTHING = path.join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");

describeWithBrowser()("agent runs (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const model = new ScriptedModel();
	const api = (method: string, url: string, body?: unknown) => pageApi(page, method, url, body);
	const steps = () => page.getByTestId("agent-step");

	beforeAll(async () => {
		const upstream = await model.start();
		ui = await startUiPlatform("agents-browser", {
			timeoutMs: 20_000,
			env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }
		});
		({ page, base } = ui);
		await signUp(page, base, owner);
		const provider = await api("POST", "/api/ai/providers", { name: "scripted", base_url: upstream });
		expect(provider.status).toBe(200);
		for (const name of ["agent-ui", "held"])
			expect(
				(
					await api("POST", "/api/ai/deployments", {
						provider_id: provider.body.id,
						name,
						provider_model: name
					})
				).status
			).toBe(200);
		const server = await api("POST", "/api/mcp/servers", {
			name: "everything",
			transport: "stdio",
			command: process.execPath,
			args: [EVERYTHING, "stdio"]
		});
		expect(server.status).toBe(200);
		const tools = await api("GET", `/api/mcp/tools?pageSize=100`);
		const echo = tools.body.rows.find((t: any) => t.name === "echo");
		expect((await api("PATCH", `/api/mcp/tools/${echo.id}`, { requires_approval: true })).status).toBe(200);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await model.stop();
	});

	test("a run streams its steps, waits for approval, and finishes once approved", async () => {
		model.script("agent-ui", (body, turn) =>
			turn === 1
				? {
						calls: [
							{ name: "everything__get-sum", arguments: { a: 20, b: 22 } },
							{ name: "everything__echo", arguments: { message: "ship it" } }
						]
					}
				: { content: `**Done**: ${toolResults(body).join(" / ")}` }
		);
		await page.getByTestId("nav-ai-agents").click();
		await page.getByTestId("page-title").filter({ hasText: "Agents" }).waitFor();
		await page.getByTestId("agent-model").selectOption("agent-ui");
		await page.getByTestId("agent-tools-everything").check();
		await page.getByTestId("agent-prompt-input").fill("Add 20 and 22, then echo ship it");
		await page.getByTestId("agent-start").click();

		await page.locator('[data-testid="agent-run-status"][data-status="awaiting_approval"]').waitFor();
		await page.getByTestId("agent-prompt").filter({ hasText: "Add 20 and 22" }).waitFor();
		await page.locator('[data-testid="agent-step"][data-kind="tool"][data-status="completed"]').waitFor();
		expect(await page.getByTestId("agent-approval").count()).toBe(1);
		await page.screenshot({ path: path.join(ARTIFACTS, "ai-agents-approval.png"), fullPage: true });

		await page.getByTestId("agent-approve").click();
		await page.locator('[data-testid="agent-run-status"][data-status="completed"]').waitFor();
		await page.getByTestId("agent-output").filter({ hasText: "Done" }).waitFor();
		expect(await page.getByTestId("agent-output").innerText()).toMatch(/42.*ship it|ship it.*42/s);
		expect(await steps().count()).toBe(4);
		await page.locator('[data-testid="agent-run-item"][data-status="completed"]').first().waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "ai-agents-completed.png"), fullPage: true });
	});

	test("a running run is cancelled from the page, and runs are found again in the history", async () => {
		model.script("held", () => ({ content: "too late" }));
		model.holding.add("held");
		try {
			await page.getByTestId("agent-model").selectOption("held");
			await page.getByTestId("agent-prompt-input").fill("take your time");
			await page.getByTestId("agent-start").click();
			await page.locator('[data-testid="agent-run-status"][data-status="running"]').waitFor();
			await page.getByTestId("agent-cancel").click();
			await page.locator('[data-testid="agent-run-item"][data-status="cancelled"]').first().waitFor();
		} finally {
			model.holding.delete("held");
			model.release();
		}
		// The first run, from the history: its transcript again.
		await page.locator('[data-testid="agent-run-item"][data-status="completed"]').first().click();
		await page.locator('[data-testid="agent-run-status"][data-status="completed"]').waitFor();
		await page.getByTestId("agent-prompt").filter({ hasText: "Add 20 and 22" }).waitFor();
		expect(await steps().count()).toBe(4);
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
