// What a new user trips over first, in Chromium against the embedded platform: long unbroken names and descriptions
// must not widen the page (desktop and phone), a stored expired token must not earn a 401 on load, and the words on
// screen match each other (page titles and their navigation items, a key's role, the Leave dialog).
import path from "path";
import type { Browser, Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, startUiPlatform } from "../helpers/browser";

const W = (n: number) => "W".repeat(n);
const user = { name: `L${W(99)}`, email: `long-${Date.now()}@example.com`, password: "correct horse battery" };
const VIEWPORTS = [
	{ width: 1400, height: 900 },
	{ width: 390, height: 844 }
];

describeWithBrowser()("long text, tokens and words (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let base = "";
	let browser: Browser;
	let tokens: { accessToken: string; refreshToken: string; expiresIn: number; user: unknown };

	const api = async (method: string, p: string, body?: unknown, org?: string) => {
		const r = await fetch(`${base}/api${p}`, {
			method,
			headers: {
				"content-type": "application/json",
				...(tokens ? { authorization: `Bearer ${tokens.accessToken}` } : {}),
				...(org ? { "x-organization-id": org } : {})
			},
			body: body === undefined ? undefined : JSON.stringify(body)
		});
		const json = await r.json();
		if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(json)}`);
		return json;
	};

	// A page signed in as the user through the stored session, as a returning visitor's browser has it.
	async function signedInPage(viewport: { width: number; height: number }, session: Record<string, unknown>) {
		const page = ui!.watch(await (await browser.newContext({ viewport })).newPage());
		await page.goto(base + "/sign-in");
		await page.evaluate(s => localStorage.setItem("coder-ide.session", JSON.stringify(s)), session);
		return page;
	}
	const validSession = () => ({
		user: tokens.user,
		accessToken: tokens.accessToken,
		refreshToken: tokens.refreshToken,
		expiresAt: Date.now() + tokens.expiresIn * 1000
	});

	beforeAll(async () => {
		ui = await startUiPlatform("polish", { timeoutMs: 15_000, env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" } });
		({ base, browser } = ui);
		const reg = await api("POST", "/auth/register", user);
		tokens = reg;
		const org = reg.organization.id;
		await api("POST", "/auth/organizations", { name: `O${W(99)}` });
		await api("POST", "/auth/teams", { name: `T${W(99)}`, description: `D${W(1999)}` }, org);
		await api("POST", "/auth/api-keys", { name: `K${W(99)}` }, org);
		await api("POST", "/secrets", { environment: "production", name: `S${"A".repeat(120)}`, value: "x" }, org);
		const provider = await api(
			"POST",
			"/ai/providers",
			{ name: `P${W(99)}`, base_url: "http://127.0.0.1:9/v1" },
			org
		);
		await api(
			"POST",
			"/ai/deployments",
			{ provider_id: provider.id, name: `M${W(190)}`, provider_model: `m${W(190)}` },
			org
		);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("a stored access token that has expired is renewed before any request: no 401 on load, and the page goes live", async () => {
		// The server cannot tell this token from an expired one: it refuses it. The browser knows it has expired.
		const page = await signedInPage(VIEWPORTS[0], {
			...validSession(),
			accessToken: "expired",
			expiresAt: Date.now() - 1000
		});
		const refused: string[] = [];
		page.on("response", r => r.status() === 401 && refused.push(r.url()));
		await page.goto(base + "/");
		await page.getByTestId("greeting").waitFor();
		await page.getByTestId("current-org").waitFor();
		await page.getByTestId("live-indicator").filter({ hasText: "Live" }).waitFor();
		expect(refused).toEqual([]);
		await page.context().close();
	});

	test("long names and descriptions never widen the page, at 1400×900 and on a 390×844 phone", async () => {
		for (const viewport of VIEWPORTS) {
			const page = await signedInPage(viewport, validSession());
			const pages = [
				"/",
				"/organization/members",
				"/organization/teams",
				"/organization/api-keys",
				"/secrets?env=production"
			];
			for (const p of [...pages, "/ai/providers"]) {
				await page.goto(base + p);
				await page.getByTestId("page-title").waitFor();
				if (p === "/organization/teams") await page.getByTestId("team-item").first().click();
				// Wait until the long text is on screen, so the measure includes it.
				const marker = p.startsWith("/secrets") ? "AAAAAAAAAA" : "WWWWWWWWWW";
				await page.waitForFunction(m => document.body.innerText.includes(m), marker);
				// Inside a table the text stays in its own cell rather than running under the next column.
				const spills = await page.evaluate(
					() =>
						[...document.querySelectorAll(".table td")].filter(td =>
							[...td.querySelectorAll("*")].some(
								e => e.getBoundingClientRect().right > td.getBoundingClientRect().right + 1
							)
						).length
				);
				expect([p, viewport.width, spills]).toEqual([p, viewport.width, 0]);
				const width = await page.evaluate(() => document.documentElement.scrollWidth);
				if (width > viewport.width)
					await page.screenshot({
						path: path.join(ARTIFACTS, `polish-${viewport.width}${p.replace(/[/?=]/g, "-")}.png`)
					});
				expect([p, viewport.width, width <= viewport.width ? "fits" : `${width}px wide`]).toEqual([
					p,
					viewport.width,
					"fits"
				]);
			}
			if (viewport.width < 700) {
				// On a phone the navigation is a drawer behind the menu button; choosing a page closes it.
				await page.getByTestId("menu-toggle").click();
				await page.getByTestId("nav-organization-members").click();
				await page.getByTestId("page-title").filter({ hasText: "Members" }).waitFor();
				await page.getByTestId("nav-organization-members").waitFor({ state: "hidden" });
				await page.screenshot({ path: path.join(ARTIFACTS, "polish-phone-members.png") });
			}
			await page.context().close();
		}
	});

	test("words: titles match the navigation, a key shows the role it follows, leaving speaks to you", async () => {
		const page: Page = await signedInPage(VIEWPORTS[0], validSession());
		await page.goto(base + "/");
		await page.getByTestId("greeting").waitFor();
		const entries = await page
			.locator("[data-testid^='nav-']")
			.evaluateAll(links =>
				links.map(a => ({ id: a.getAttribute("data-testid")!, label: a.textContent!.trim() }))
			);
		expect(entries.length).toBeGreaterThan(5);
		for (const { id, label } of entries) {
			await page.getByTestId(id).click();
			await page.getByTestId("page-title").filter({ hasText: label }).waitFor();
			expect(await page.getByTestId("page-title").textContent()).toBe(label);
		}

		await page.getByTestId("nav-organization-api-keys").click();
		const role = page.getByTestId("api-key-role-cell").first();
		await role.waitFor();
		expect((await role.textContent())!.replace(/\s+/g, " ").trim()).toBe("Owner (follows your role)");

		await page.getByTestId("nav-organization-members").click();
		await page.getByTestId("member-remove").first().click();
		const text = await page.getByTestId("leave-text").textContent();
		expect(text).toMatch(/^\s*You will lose access to/);
		expect(text).toContain("Your API keys");
		expect(text).not.toMatch(/Their|project/i);
		expect(ui!.pageErrors).toEqual([]);
		await page.context().close();
	});
});
