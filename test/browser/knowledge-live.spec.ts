// The knowledge pages keep up without a reload, as two people see them in two browsers: Ana's second session (the
// API, with its own token) writes, edits and publishes an article, and the page Ana has open shows each change;
// Ben, a member, has the article list open and sees the articles of the open category appear, but the title of an
// article in a category restricted to admins never reaches his browser: not on the page, not in any answer or
// socket frame (a live notice carries a kind and an id only; the page re-reads through permission-checked actions).
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import path from "path";
import type { Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const password = "correct horse battery";
const ana = { name: "Ana", email: `ana-kb-live-${stamp}@example.com`, password };
const ben = { name: "Ben", email: `ben-kb-live-${stamp}@example.com`, password };
const SECRET_TITLE = "Board salary bands 2027";
const SECRET_EDIT = "Board salary bands 2027 (revised)";

describeWithBrowser()("knowledge pages refresh live, within permissions (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let anaPage: Page, benPage: Page;
	let base = "";
	let token = "";
	let org = "";
	// Everything Ben's browser received: answers of the API and socket frames.
	const benReceived: string[] = [];

	// Ana's second session: her own token from the sign-up, not the browser's session.
	async function asAna(method: string, url: string, body?: unknown) {
		const r = await fetch(base + url, {
			method,
			headers: { authorization: `Bearer ${token}`, "x-organization-id": org, "content-type": "application/json" },
			body: body === undefined ? undefined : JSON.stringify(body)
		});
		const json = await r.json();
		if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(json)}`);
		return json;
	}
	const row = (p: Page, title: string) => p.locator(`[data-testid="kb-article-row"][data-title="${title}"]`);
	// A marker set on the window once: still there at the end means the page was never reloaded.
	const mark = (p: Page) => p.evaluate(() => ((window as unknown as { __kbLive: boolean }).__kbLive = true));
	const marked = (p: Page) => p.evaluate(() => (window as unknown as { __kbLive?: boolean }).__kbLive === true);

	beforeAll(async () => {
		ui = await startUiPlatform("knowledge-live-browser", { timeoutMs: 20_000 });
		base = ui.base;
		for (const u of [ana, ben]) {
			const r = await fetch(`${base}/api/auth/register`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify(u)
			});
			const json = await r.json();
			if (u !== ana) continue;
			token = json.accessToken;
			org = json.organization.id;
		}
		await asAna("POST", `/api/auth/organizations/${org}/members`, { email: ben.email, role: "member" });
		anaPage = ui.page;
		benPage = ui.watch(await (await ui.browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage());
		benPage.on("websocket", ws => ws.on("framereceived", f => benReceived.push(String(f.payload))));
		benPage.on("response", async r => {
			if (r.url().includes("/api/")) benReceived.push(await r.text().catch(() => ""));
		});
		await signIn(anaPage, base, ana);
		await signIn(benPage, base, ben);
		await benPage.getByTestId("org-switcher").click();
		await benPage.getByTestId("org-option").filter({ hasText: "Ana's workspace" }).click();
		await benPage.getByTestId("current-org").filter({ hasText: "Ana's workspace" }).waitFor();
		for (const p of [anaPage, benPage]) {
			await p.getByTestId("live-indicator").filter({ hasText: "Live" }).waitFor();
			await p.getByTestId("nav-knowledge").click();
			await p.getByTestId("kb-categories").waitFor();
			await mark(p);
		}
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("an article written, edited and published in another session shows on the open pages", async () => {
		const open = await asAna("POST", "/api/knowledge/categories", { name: "Engineering" });
		// The new category and its first article reach both open pages.
		await anaPage.locator('[data-testid="kb-category"][data-name="Engineering"]').waitFor();
		await benPage.locator('[data-testid="kb-category"][data-name="Engineering"]').waitFor();
		const article = await asAna("POST", "/api/knowledge/articles", {
			category_id: open.id,
			title: "Deploy guide",
			body: "Run the **smoke** tests."
		});
		await row(anaPage, "Deploy guide").waitFor();
		await row(benPage, "Deploy guide").waitFor();

		// Ana opens it; her other session edits and publishes it: the open article follows, revision by revision.
		await row(anaPage, "Deploy guide").getByRole("link").click();
		await anaPage.getByTestId("kb-article-title").filter({ hasText: "Deploy guide" }).waitFor();
		expect(await anaPage.getByTestId("kb-article-status").textContent()).toBe("draft");
		await asAna("PATCH", `/api/knowledge/articles/${article.id}`, {
			title: "Deploy guide v2",
			body: "Run the canary rollout first."
		});
		await anaPage.getByTestId("kb-article-title").filter({ hasText: "Deploy guide v2" }).waitFor();
		await anaPage.getByTestId("kb-article-body").getByText("canary rollout").waitFor();
		await asAna("POST", `/api/knowledge/articles/${article.id}/publish`);
		await anaPage.getByTestId("kb-article-status").filter({ hasText: "published" }).waitFor();
		// Ben's list shows the new title and status.
		await row(benPage, "Deploy guide v2").getByText("published").waitFor();
		await anaPage.screenshot({ path: path.join(ARTIFACTS, "knowledge-live-article.png") });
		expect(await marked(anaPage)).toBe(true);
		expect(await marked(benPage)).toBe(true);
	});

	test("a member without access to a category never sees the titles in it, while his page keeps up", async () => {
		const board = await asAna("POST", "/api/knowledge/categories", { name: "Board only" });
		await asAna("PUT", `/api/knowledge/categories/${board.id}/grants`, {
			grants: [{ role: "admin", access: "read" }]
		});
		const secret = await asAna("POST", "/api/knowledge/articles", {
			category_id: board.id,
			title: SECRET_TITLE,
			body: "Not for members.",
			status: "published"
		});
		await asAna("PATCH", `/api/knowledge/articles/${secret.id}`, { title: SECRET_EDIT });
		// Written after the restricted ones: once Ben's page shows it, it has handled every notice before it.
		const engineering = (await asAna("GET", "/api/knowledge/categories")).find(
			(c: { name: string }) => c.name === "Engineering"
		);
		await asAna("POST", "/api/knowledge/articles", { category_id: engineering.id, title: "After the board" });
		await row(benPage, "After the board").waitFor();
		// Ana, an owner, sees the restricted article in her list (the open article's page went back to the list).
		await anaPage.getByTestId("nav-knowledge").click();
		await row(anaPage, SECRET_EDIT).waitFor();

		const benText = await benPage.content();
		for (const title of [SECRET_TITLE, "Board only"]) {
			expect(benText).not.toContain(title);
			expect(benReceived.filter(s => s.includes(title))).toEqual([]);
		}
		// What Ben received did include the notices about it: only kinds and ids.
		expect(benReceived.some(s => s.includes(secret.id))).toBe(true);
		expect(await marked(benPage)).toBe(true);
		await benPage.screenshot({ path: path.join(ARTIFACTS, "knowledge-live-member.png") });
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
