// The knowledge UI as people use it: the built web UI served by an embedded platform process (PGlite, in-process
// channels), driven in headless Chromium. An owner creates a category (renames it, restricts it by a grant), writes an article with the Markdown preview
// beside the editor, publishes it, edits it, compares the two revisions side by side, and finds the edit by search
// with the matching word highlighted in the snippet.
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import fs from "fs";
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signUp, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const owner = { name: "Ada Lovelace", email: `ada-kb-${stamp}@example.com`, password: "correct horse battery" };
const SHOTS = path.join(ARTIFACTS, "knowledge");

describeWithBrowser()("Knowledge UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";

	beforeAll(async () => {
		ui = await startUiPlatform("knowledge-browser", {
			timeoutMs: 15_000,
			context: { viewport: { width: 1400, height: 900 } }
		});
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	const shot = async (name: string) => {
		fs.mkdirSync(SHOTS, { recursive: true });
		await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
	};

	test("category, write and publish, edit, revision diff, search with a highlighted snippet", async () => {
		await signUp(page, base, owner);
		await page.getByTestId("nav-knowledge").click();
		await page.getByTestId("kb-articles-empty").waitFor();

		await page.getByTestId("kb-category-name").fill("Handbook");
		await page.getByTestId("kb-category-add").click();
		await page.locator('[data-testid="kb-category"][data-name="Handbook"]').waitFor();

		// Renamed, then restricted to members and above by a grant (the tree marks it).
		await page.getByTestId("kb-edit-Handbook").click();
		await page.getByTestId("kb-category-rename").fill("Team handbook");
		await page.getByTestId("kb-category-save").click();
		await page.locator('[data-testid="kb-category"][data-name="Team handbook"]').waitFor();
		await page.getByTestId("kb-permissions-Team handbook").click();
		await page.getByTestId("kb-grant-add").click();
		await page.getByTestId("kb-grants-save").click();
		await page.locator('[data-testid="kb-category"][data-name="Team handbook"]').getByText("restricted").waitFor();
		await page.locator('[data-testid="kb-category"][data-name="Team handbook"]').click();

		await page.getByTestId("kb-article-new").click();
		await page.getByTestId("kb-title").fill("Release checklist");
		await page.getByTestId("kb-body").fill("# Releasing\n\nTag the commit.\nRun the **smoke** tests.");
		// The preview renders the Markdown as it is typed.
		await page.getByTestId("kb-preview").locator("strong", { hasText: "smoke" }).waitFor();
		await shot("editor");
		await page.getByTestId("kb-save-publish").click();
		await page.getByTestId("kb-article-title").filter({ hasText: "Release checklist" }).waitFor();
		expect(await page.getByTestId("kb-article-status").textContent()).toBe("published");
		await page.getByTestId("kb-article-body").locator("h1", { hasText: "Releasing" }).waitFor();

		await page.getByTestId("kb-edit").click();
		await page.getByTestId("kb-body").fill("# Releasing\n\nTag the commit.\nRun the canary rollout first.");
		await page.getByTestId("kb-note").fill("canary before smoke");
		await page.getByTestId("kb-save").click();
		await page.getByTestId("kb-article-body").getByText("canary rollout").waitFor();

		await page.getByTestId("kb-history-toggle").click();
		await page.locator('[data-testid="kb-revision"][data-number="2"]').waitFor();
		const diff = page.getByTestId("kb-diff");
		await diff.locator('[data-op="removed"]', { hasText: "Run the **smoke** tests." }).waitFor();
		await diff.locator('[data-op="added"]', { hasText: "Run the canary rollout first." }).waitFor();
		await shot("diff");

		await page.getByTestId("kb-search-link").click();
		await page.getByTestId("kb-search-input").fill("canary");
		// The edit reaches the index through knowledge.events: search until it is there.
		const snippet = page.getByTestId("kb-snippet").first();
		for (let i = 0; i < 50 && !(await snippet.isVisible()); i++) {
			await page.getByTestId("kb-search-go").click();
			await page.waitForTimeout(100);
		}
		expect(await snippet.locator("mark").first().textContent()).toBe("canary");
		expect(await page.getByTestId("kb-search-result").count()).toBe(1);
		await shot("search");
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
