// The MCP pages in the built UI against an embedded platform, with an MCP server built with the SDK on 127.0.0.1
// (Streamable HTTP, a bearer token from a secret): register it through the dialog, see its tools, try "add" from the
// form generated from its input schema, check its health (the timeline grows), and find the call in the log.
// Screenshots at 1400×900 and 390×844 go to SHOTS_DIR (default test-artifacts/).
import fs from "fs";
import path from "path";
import type { Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, pageApi, signUp, startUiPlatform } from "../helpers/browser";
import { TestMcpHttpServer } from "../mcp/http-server";
import { TestOAuthMcpServer } from "../mcp/oauth-server";

const owner = { name: "Grace Hopper", email: `grace-mcp-${Date.now()}@example.com`, password: "correct horse battery" };
const SHOTS = process.env.SHOTS_DIR ?? ARTIFACTS;
const TOKEN = "tok-browser-2b7e44";

describeWithBrowser()("MCP servers (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const mcp = new TestMcpHttpServer(TOKEN);
	const guarded = new TestOAuthMcpServer();

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

	beforeAll(async () => {
		await mcp.start();
		await guarded.start();
		ui = await startUiPlatform("mcp", {
			timeoutMs: 15_000,
			env: port => ({
				MCP_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				MCP_HEALTH_INTERVAL_MS: "0",
				MCP_OAUTH_REDIRECT_URL: `http://127.0.0.1:${port}/api/mcp/oauth/callback`
			})
		});
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await mcp.stop();
		await guarded.stop();
	});

	afterEach(() => {
		expect(ui?.pageErrors).toEqual([]);
		expect(ui?.cspViolations).toEqual([]);
	});

	test("register an HTTP server through the dialog; its tools are listed", async () => {
		await signUp(page, base, owner);
		const secret: any = await pageApi(page, "POST", "/api/secrets", {
			environment: "production",
			name: "MCP_TOKEN",
			value: `Bearer ${TOKEN}`
		});
		expect(secret.status ?? 200).toBeLessThan(300);
		await page.getByTestId("nav-mcp").click();
		await page.getByTestId("servers-empty").waitFor();
		await page.getByTestId("server-new").click();
		const dialog = page.getByTestId("server-dialog");
		await dialog.getByTestId("server-name").fill("calc");
		await dialog.getByTestId("server-url").fill(`${mcp.url}/mcp`);
		await dialog.getByTestId("server-headers").fill("Authorization: secret:MCP_TOKEN");
		await dialog.getByTestId("server-submit").click();
		await page.getByTestId("server-title").filter({ hasText: "calc" }).waitFor();
		await page.getByTestId("tool-add").waitFor();
		expect(await page.getByTestId("tool-list").locator("li").count()).toBeGreaterThanOrEqual(6);
	});

	test("try a tool from the form made from its input schema; check health; the call is in the log", async () => {
		await page.getByTestId("tool-add").click();
		await page.getByTestId("arg-a").fill("2");
		await page.getByTestId("arg-b").fill("x");
		await page.getByTestId("tool-run").click();
		await page.getByText("b must be a number").waitFor();
		await page.getByTestId("arg-b").fill("3");
		await page.getByTestId("tool-run").click();
		await page.getByTestId("tool-result").filter({ hasText: "5" }).waitFor();
		expect(await page.getByTestId("tool-structured").textContent()).toContain('"sum": 5');
		await page.getByTestId("server-check").click();
		await page.getByTestId("server-note").filter({ hasText: "Answered in" }).waitFor();
		await page.getByTestId("health-check").first().waitFor();
		await page.getByTestId("server-health").filter({ hasText: "healthy" }).waitFor();
		await page.getByTestId("execution-row").first().waitFor();
		await shots("mcp-server");

		await page.getByTestId("nav-mcp-executions").click();
		await page.getByTestId("executions-table").waitFor();
		const row = page.getByTestId("execution-row").filter({ hasText: "add" }).first();
		await row.click();
		expect(await page.getByTestId("execution-arguments").first().textContent()).toContain('"b": 3');
		await shots("mcp-executions");
	});

	test("an OAuth server: 'authorization needed', Authorize, the authorization server and back, then usable", async () => {
		await page.getByTestId("nav-mcp").click();
		await page.getByTestId("server-new").click();
		const dialog = page.getByTestId("server-dialog");
		await dialog.getByTestId("server-name").fill("guarded");
		await dialog.getByTestId("server-url").fill(guarded.url);
		await dialog.getByTestId("server-submit").click();
		await page.getByTestId("server-title").filter({ hasText: "guarded" }).waitFor();
		await page.getByTestId("server-oauth").filter({ hasText: "authorization needed" }).waitFor();
		await shots("mcp-oauth-needed");
		// The browser leaves for the authorization server (which consents at once) and comes back by the callback.
		await page.getByTestId("server-authorize").click();
		await page.waitForURL(/\/mcp-servers\/[0-9a-f-]+\?oauth=authorized$/);
		await page.getByTestId("server-note").filter({ hasText: "Authorized" }).waitFor();
		await page.getByTestId("server-oauth").filter({ hasText: "OAuth authorized" }).waitFor();
		await page.getByTestId("tool-add").waitFor();
		await page.getByTestId("tool-add").click();
		await page.getByTestId("arg-a").fill("20");
		await page.getByTestId("arg-b").fill("22");
		await page.getByTestId("tool-run").click();
		await page.getByTestId("tool-result").filter({ hasText: "42" }).waitFor();
	});
});
