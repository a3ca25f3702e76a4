// The secrets UI as people use it: the built web UI served by an embedded platform process, driven in headless
// Chromium. An owner creates a secret in production, reveals it, edits it (and meets a concurrent change), rolls
// back, checks the audit chain, imports and exports a .env; a viewer sees names, is offered Reveal only once granted.
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import fs from "fs";
import path from "path";
import { type BrowserContext, type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, signUp, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const owner = { name: "Ada Lovelace", email: `ada-${stamp}@example.com`, password: "correct horse battery" };
const viewer = { name: "Grace Hopper", email: `grace-${stamp}@example.com`, password: "another horse battery" };
const ORG = `${owner.name}'s workspace`;
const V1 = "postgres://app:v1-secret@db.internal/prod";
const V2 = "postgres://app:v2-secret@db.internal/prod";
const THEIRS = "postgres://app:changed-by-someone-else@db.internal/prod";

describeWithBrowser()("secrets UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let viewerContext: BrowserContext;
	let viewerPage: Page;
	let base = "";
	let secretId = "";

	// Toasts are dismissed first (without moving focus, which would hide a revealed value) so they cover nothing.
	async function shot(p: Page, name: string) {
		await p.evaluate(() =>
			document.querySelectorAll<HTMLButtonElement>('[data-testid="toast"] button').forEach(b => b.click())
		);
		await p.getByTestId("toast").first().waitFor({ state: "detached" });
		await p.evaluate(() => window.scrollTo(0, 0));
		await p.screenshot({ path: path.join(ARTIFACTS, `secrets-${name}.png`), fullPage: true });
	}
	const toast = (p: Page, text: string | RegExp) =>
		p.getByTestId("toast").filter({ hasText: text }).first().waitFor();
	const row = (p: Page, name: string) => p.locator(`[data-testid="secret-row"][data-name="${name}"]`);
	const versionRow = (p: Page, v: number) => p.locator(`[data-testid="version-row"][data-version="${v}"]`);

	async function openEnvironment(p: Page, env: string) {
		await p.getByTestId("nav-secrets").click();
		await p.getByTestId("page-title").filter({ hasText: "Secrets" }).waitFor();
		await p.locator(`[data-testid="env-tab"][data-env="${env}"]`).click();
		await p.locator(`[data-testid="env-tab"][data-env="${env}"][aria-selected="true"]`).waitFor();
	}

	beforeAll(async () => {
		ui = await startUiPlatform("secrets-browser", { timeoutMs: 15_000, context: { acceptDownloads: true } });
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("the owner signs up and creates a secret in production", async () => {
		await signUp(page, base, owner);

		await openEnvironment(page, "production");
		await page.getByTestId("secrets-empty").filter({ hasText: "No secrets in production yet" }).waitFor();

		await page.getByTestId("secret-new").click();
		const dialog = page.getByTestId("secret-form-dialog");
		expect(await dialog.getByTestId("secret-environment").inputValue()).toBe("production");
		// The server's validation message appears next to the field it names.
		await dialog.getByTestId("secret-name").fill("1-not-a-name");
		await dialog.getByTestId("secret-value-input").fill(V1);
		await dialog.getByTestId("secret-save").click();
		await dialog
			.locator(".field__error")
			.filter({ hasText: /must start with a letter/ })
			.waitFor();

		await dialog.getByTestId("secret-name").fill("DATABASE_URL");
		await dialog.getByTestId("secret-description").fill("Primary database of the app");
		await dialog.getByTestId("secret-tags").fill("database, core");
		await dialog.getByTestId("secret-save").click();
		await toast(page, "Secret created");

		const r = row(page, "DATABASE_URL");
		await r.waitFor();
		expect(await r.getByTestId("secret-version").textContent()).toBe("v1");
		const text = (await r.textContent()) ?? "";
		expect(text).toContain("Primary database of the app");
		expect(text).toContain("database");
		expect(text).toContain("core");
		// Never a value in the list.
		expect(text).not.toContain(V1);
		expect(await page.getByTestId("secret-value-text").count()).toBe(0);
		await shot(page, "1-list");
	});

	test("reveals the value in place, copies it, and it hides again when focus leaves", async () => {
		const r = row(page, "DATABASE_URL");
		await r.getByTestId("secret-reveal").click();
		await r.getByTestId("secret-value-text").filter({ hasText: V1 }).waitFor();
		await r.getByTestId("secret-copy").click();
		await r.getByTestId("secret-copy").filter({ hasText: "Copied" }).waitFor();
		await shot(page, "2-revealed");

		// Clicking elsewhere moves focus away: the value is hidden again.
		await page.getByTestId("page-title").click();
		await r.getByTestId("secret-value-text").waitFor({ state: "detached" });
		expect(await r.textContent()).not.toContain(V1);

		// By keyboard: Enter reveals (focus moves to the value), Escape hides.
		await r.getByTestId("secret-reveal").focus();
		await page.keyboard.press("Enter");
		await r.getByTestId("secret-value-text").filter({ hasText: V1 }).waitFor();
		expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe(
			"secret-value-text"
		);
		await page.keyboard.press("Escape");
		await r.getByTestId("secret-value-text").waitFor({ state: "detached" });

		// The environment tabs follow the arrow keys.
		await page.locator('[data-testid="env-tab"][data-env="production"]').focus();
		await page.keyboard.press("ArrowLeft");
		await page.locator('[data-testid="env-tab"][data-env="staging"][aria-selected="true"]').waitFor();
		await page.getByTestId("secrets-empty").filter({ hasText: "No secrets in staging yet" }).waitFor();
		expect(new URL(page.url()).searchParams.get("env")).toBe("staging");
		await page.keyboard.press("ArrowRight");
		await row(page, "DATABASE_URL").waitFor();
	});

	test("edits the secret: a concurrent change is caught (409), reloaded, then saved as a new version", async () => {
		await row(page, "DATABASE_URL").getByTestId("secret-link").click();
		await page.getByTestId("secret-title").filter({ hasText: "DATABASE_URL" }).waitFor();
		secretId = new URL(page.url()).pathname.split("/").pop()!;
		expect(secretId).toMatch(/^[0-9a-f-]{36}$/);
		expect(await page.getByTestId("secret-current-version").textContent()).toBe("v1");

		await page.getByTestId("secret-edit").click();
		const dialog = page.getByTestId("secret-form-dialog");
		expect(await dialog.getByTestId("secret-form-base").textContent()).toBe("v1");

		// Someone else saves a new value while the dialog is open.
		const status = await page.evaluate(
			async ({ id, value }) => {
				const session = JSON.parse(localStorage.getItem("coder-ide.session")!);
				const res = await fetch(`/api/secrets/${id}`, {
					method: "PATCH",
					headers: {
						"content-type": "application/json",
						authorization: `Bearer ${session.accessToken}`,
						"x-organization-id": localStorage.getItem("coder-ide.organization")!
					},
					body: JSON.stringify({ value })
				});
				return res.status;
			},
			{ id: secretId, value: THEIRS }
		);
		expect(status).toBe(200);

		await dialog.getByTestId("secret-value-input").fill(V2);
		await dialog.getByTestId("secret-save").click();
		await dialog
			.getByTestId("secret-conflict")
			.filter({ hasText: /someone changed this secret since you opened it/i })
			.waitFor();
		await shot(page, "3-conflict");

		await dialog.getByTestId("secret-conflict-reload").click();
		await dialog.getByTestId("secret-form-base").filter({ hasText: "v2" }).waitFor();
		expect(await dialog.getByTestId("secret-value-input").inputValue()).toBe(V2);
		await dialog.getByTestId("secret-save").click();
		await toast(page, "Secret saved");
		await page.getByTestId("secret-current-version").filter({ hasText: "v3" }).waitFor();
		expect(await page.getByTestId("version-row").count()).toBe(3);

		const current = page.locator(".facts").getByTestId("secret-value");
		await current.getByTestId("secret-reveal").click();
		await current.getByTestId("secret-value-text").filter({ hasText: V2 }).waitFor();
		await current.getByTestId("secret-reveal").click(); // Hide
		await current.getByTestId("secret-value-text").waitFor({ state: "detached" });
	});

	test("rolls back to v1 (confirmed) and the current value is v1's again", async () => {
		await versionRow(page, 1).getByTestId("version-rollback").click();
		await page.getByTestId("confirm-dialog").filter({ hasText: "Roll back to v1?" }).waitFor();
		await page.getByTestId("confirm-button").click();
		await toast(page, "Rolled back");
		await page.getByTestId("secret-current-version").filter({ hasText: "v4" }).waitFor();
		expect(await versionRow(page, 4).getByTestId("version-current").count()).toBe(1);

		const current = page.locator(".facts").getByTestId("secret-value");
		await current.getByTestId("secret-reveal").click();
		await current.getByTestId("secret-value-text").filter({ hasText: V1 }).waitFor();
		await shot(page, "4-detail-after-rollback");

		// An older version can be revealed from the history too.
		await versionRow(page, 2).getByTestId("secret-reveal").click();
		await versionRow(page, 2).getByTestId("secret-value-text").filter({ hasText: THEIRS }).waitFor();
	});

	test("the audit log lists the operations newest first and its chain verifies", async () => {
		await page.getByTestId("nav-secrets-audit").click();
		await page.getByTestId("page-title").filter({ hasText: "Audit log" }).waitFor();
		await page.getByTestId("audit-row").first().waitFor();
		const actions = await page
			.getByTestId("audit-row")
			.evaluateAll(rows => rows.map(r => r.getAttribute("data-action")));
		expect(actions[0]).toBe("reveal"); // the last thing done
		for (const a of ["create", "reveal", "update", "rollback"]) expect(actions).toContain(a);
		const seqs = await page
			.getByTestId("audit-row")
			.evaluateAll(rows => rows.map(r => Number(r.querySelector("td")?.textContent)));
		expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
		expect(await page.getByTestId("audit-table").textContent()).toContain("production/DATABASE_URL");

		await page.getByTestId("audit-verify").click();
		const result = page.getByTestId("audit-verify-result");
		await result.waitFor();
		expect(await result.getAttribute("data-ok")).toBe("true");
		expect(await result.textContent()).toContain("Chain OK");
		await shot(page, "5-audit");
	});

	test("imports a .env with two entries, and exports the environment as a .env download", async () => {
		await openEnvironment(page, "production");
		await page.getByTestId("secrets-import").click();
		const dialog = page.getByTestId("import-dialog");
		expect(await dialog.getByTestId("import-environment").inputValue()).toBe("production");
		await dialog
			.getByTestId("import-content")
			.fill('# cache and payments\nREDIS_URL=redis://cache.internal:6379\nexport STRIPE_KEY="sk_test_51abc"\n');
		await dialog.getByTestId("import-submit").click();
		await dialog.getByTestId("import-result").waitFor();
		expect(await dialog.getByTestId("import-created").textContent()).toContain("2 created");
		expect(await dialog.getByTestId("import-skipped").textContent()).toContain("0 skipped");
		expect(await dialog.getByTestId("import-result").textContent()).toContain("REDIS_URL");
		await shot(page, "6-import-result");
		await dialog.getByTestId("import-done").click();

		await row(page, "REDIS_URL").waitFor();
		await row(page, "STRIPE_KEY").waitFor();
		expect(await page.getByTestId("secret-row").count()).toBe(3);

		const [download] = await Promise.all([
			page.waitForEvent("download"),
			page.getByTestId("secrets-export").click()
		]);
		expect(download.suggestedFilename()).toBe("production.env");
		const file = path.join(ARTIFACTS, "secrets-export.env");
		await download.saveAs(file);
		const content = fs.readFileSync(file, "utf8");
		expect(content).toContain("DATABASE_URL='postgres://app:v1-secret@db.internal/prod'");
		expect(content).toContain("REDIS_URL='redis://cache.internal:6379'");
		expect(content).toContain("STRIPE_KEY='sk_test_51abc'");
		fs.rmSync(file);
		await shot(page, "7-list-after-import");
	});

	test("tabs count secrets; environments compare without values; a version diffs with the current one", async () => {
		const count = (env: string) =>
			page.locator(`[data-testid="env-tab"][data-env="${env}"] [data-testid="env-count"]`).textContent();
		expect(await count("production")).toBe("3");
		expect(await count("staging")).toBe("0");

		await openEnvironment(page, "staging");
		await page.getByTestId("secrets-import").click();
		const dialog = page.getByTestId("import-dialog");
		await dialog
			.getByTestId("import-content")
			.fill("REDIS_URL=redis://cache.internal:6379\nSTRIPE_KEY=sk_test_other\n");
		await dialog.getByTestId("import-submit").click();
		await dialog.getByTestId("import-result").waitFor();
		await dialog.getByTestId("import-done").click();
		await page
			.locator('[data-testid="env-tab"][data-env="staging"] [data-testid="env-count"]')
			.filter({ hasText: "2" })
			.waitFor();

		await page.getByTestId("nav-secrets-compare").click();
		await page.getByTestId("page-title").filter({ hasText: "Compare environments" }).waitFor();
		await page.getByTestId("compare-from").selectOption("production");
		await page.getByTestId("compare-to").selectOption("staging");
		const status = (name: string) =>
			page
				.locator(`[data-testid="compare-row"][data-name="${name}"] [data-testid="compare-status"]`)
				.textContent();
		await page.locator('[data-testid="compare-row"][data-name="STRIPE_KEY"]').waitFor();
		expect(await status("DATABASE_URL")).toBe("Only in production");
		expect(await status("REDIS_URL")).toBe("Same value");
		expect(await status("STRIPE_KEY")).toBe("Differs");
		const table = (await page.getByTestId("compare-table").textContent()) ?? "";
		expect(table).not.toContain("sk_test");
		await shot(page, "7b-compare");

		await page.goto(`${base}/secrets/${secretId}`);
		await versionRow(page, 2).getByTestId("version-diff").click();
		const diff = page.getByTestId("version-diff-body");
		await diff.waitFor();
		// Word by word: what only v2 had, and what only the current version has.
		const removed = (await diff.locator('[data-change="removed"]').allTextContents()).join(" ");
		const added = (await diff.locator('[data-change="added"]').allTextContents()).join(" ");
		expect(removed).toMatch(/changed.*someone-else/);
		expect(added).toMatch(/v1.*secret/);
		expect(removed).not.toContain("db.internal");
		await shot(page, "7c-version-diff");
		await page.getByTestId("version-diff-close").click();
		await page.getByTestId("version-diff-body").waitFor({ state: "detached" });
	});

	test("the audit log filters by action and exports what it shows as CSV", async () => {
		await page.getByTestId("nav-secrets-audit").click();
		await page.getByTestId("audit-row").first().waitFor();
		await page.getByTestId("audit-filter-action").selectOption("compare");
		await page.waitForFunction(() => !document.querySelector('[data-testid="audit-row"][data-action="reveal"]'));
		const actions = await page
			.getByTestId("audit-row")
			.evaluateAll(rows => rows.map(r => r.getAttribute("data-action")));
		expect(actions.length).toBeGreaterThan(0);
		expect(new Set(actions)).toEqual(new Set(["compare"]));

		const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("audit-export").click()]);
		expect(download.suggestedFilename()).toBe("secrets-audit.csv");
		const file = path.join(ARTIFACTS, "secrets-audit.csv");
		await download.saveAs(file);
		const lines = fs.readFileSync(file, "utf8").trim().split("\r\n");
		fs.rmSync(file);
		expect(lines[0]).toBe("seq,actor_type,actor_id,action,target,outcome,request_id,details,created_at");
		expect(lines.length - 1).toBe(actions.length);
		await page.getByTestId("audit-filter-action").selectOption({ label: "Any action" });
		await page.locator('[data-testid="audit-row"][data-action="reveal"]').first().waitFor();
	});

	test("a viewer sees the names but needs a grant to read a value", async () => {
		const registered = await fetch(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(viewer)
		});
		expect(registered.status).toBe(200);
		await page.getByTestId("nav-organization-members").click();
		await page.getByTestId("member-email").fill(viewer.email);
		await page.getByTestId("member-role").selectOption("viewer");
		await page.getByTestId("member-add").click();
		await toast(page, "Member added");

		viewerContext = await ui!.browser.newContext({ viewport: { width: 1280, height: 800 } });
		viewerPage = ui!.watch(await viewerContext.newPage());
		await signIn(viewerPage, base, viewer);
		await viewerPage.getByTestId("org-switcher").click();
		await viewerPage.getByTestId("org-option").filter({ hasText: ORG }).click();
		await viewerPage.getByTestId("current-org").filter({ hasText: ORG }).waitFor();

		// Only the list: grants, audit and settings are for admins.
		expect(await viewerPage.getByTestId("nav-secrets-audit").count()).toBe(0);
		expect(await viewerPage.getByTestId("nav-secrets-access").count()).toBe(0);
		expect(await viewerPage.getByTestId("nav-secrets-settings").count()).toBe(0);
		await openEnvironment(viewerPage, "production");
		for (const name of ["DATABASE_URL", "REDIS_URL", "STRIPE_KEY"]) await row(viewerPage, name).waitFor();
		expect(await viewerPage.getByTestId("secrets-import").count()).toBe(0);
		// Writing needs secrets:write, which viewers do not hold (the API refuses it too, grant or not).
		expect(await viewerPage.getByTestId("secret-new").count()).toBe(0);

		// Without a grant the Reveal button is not offered: disabled, saying which grant is missing.
		const r = row(viewerPage, "DATABASE_URL");
		const reveal = r.getByTestId("secret-reveal");
		await viewerPage.waitForFunction(
			() => !!document.querySelector('[data-testid="secret-row"] [data-testid="secret-reveal"][disabled]')
		);
		expect(await reveal.getAttribute("title")).toMatch(/You need a read grant on production\/DATABASE_URL/);
		expect(await r.getByTestId("secret-edit").count()).toBe(0);
		expect(await r.getByTestId("secret-value-text").count()).toBe(0);
		await shot(viewerPage, "8-viewer-needs-grant");
	});

	test("the owner grants the viewer read access to one secret, and the viewer can then reveal it", async () => {
		await page.goto(`${base}/secrets/${secretId}`);
		await page.getByTestId("secret-title").filter({ hasText: "DATABASE_URL" }).waitFor();
		const panel = page.getByTestId("grants-panel");
		await panel.getByTestId("grants-empty").waitFor();
		await panel.getByTestId("grantee-type").selectOption("user");
		await panel.getByTestId("grantee-user").selectOption({ label: `${viewer.name} (${viewer.email}) · viewer` });
		await panel.getByTestId("grant-permission").selectOption("read");
		await panel.getByTestId("grant-add").click();
		await toast(page, "Access granted");
		const grant = panel.getByTestId("grant-row").filter({ hasText: viewer.name });
		await grant.waitFor();
		expect(await grant.textContent()).toContain("read");
		expect(await grant.textContent()).toContain("production/DATABASE_URL");
		await shot(page, "9-grant");

		// The viewer's open page learns of the grant (a live notice) and offers Reveal, without a reload.
		const r = row(viewerPage, "DATABASE_URL");
		await r.locator('[data-testid="secret-reveal"]:not([disabled])').waitFor();
		await r.getByTestId("secret-reveal").click();
		await r.getByTestId("secret-value-text").filter({ hasText: V1 }).waitFor();
		expect(await r.getByTestId("secret-need-grant").count()).toBe(0);
		await shot(viewerPage, "10-viewer-revealed");

		// The grant is for that secret only.
		const other = row(viewerPage, "REDIS_URL");
		expect(await other.getByTestId("secret-reveal").isDisabled()).toBe(true);
		await viewerContext.close();
	});

	test("destroys a version, deletes the secret and restores it (confirmed)", async () => {
		await page.goto(`${base}/secrets/${secretId}`);
		await versionRow(page, 2).getByTestId("version-destroy").click();
		await page.getByTestId("confirm-dialog").filter({ hasText: "Destroy v2?" }).waitFor();
		await page.getByTestId("confirm-button").click();
		await versionRow(page, 2).getByTestId("version-destroyed").waitFor();
		expect(await versionRow(page, 2).getByTestId("secret-reveal").count()).toBe(0);
		expect(await versionRow(page, 2).getByTestId("version-rollback").count()).toBe(0);

		await page.getByTestId("secret-delete").click();
		await page.getByTestId("confirm-button").click();
		await toast(page, "Secret deleted");
		await page.getByTestId("secrets-table").waitFor();
		await row(page, "DATABASE_URL").waitFor({ state: "detached" });
		await page.getByTestId("secrets-show-deleted").check();
		const deleted = row(page, "DATABASE_URL");
		await deleted.getByTestId("secret-deleted").waitFor();
		expect(await deleted.getByTestId("secret-reveal").count()).toBe(0);
		await shot(page, "11-show-deleted");
		await deleted.getByTestId("secret-restore").click();
		await toast(page, "Secret restored");
		await deleted.getByTestId("secret-deleted").waitFor({ state: "detached" });
		await deleted.getByTestId("secret-reveal").waitFor();

		// Search narrows the list by name.
		await page.getByTestId("secrets-search").fill("redis");
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="secret-row"]').length === 1);
		expect(await row(page, "REDIS_URL").count()).toBe(1);
		await page.getByTestId("secrets-search").fill("");
		await page.waitForFunction(() => document.querySelectorAll('[data-testid="secret-row"]').length === 3);
	});

	test("the access page lists every grant; a prefix grant to a service is added and revoked", async () => {
		await page.getByTestId("nav-secrets-access").click();
		await page.getByTestId("page-title").filter({ hasText: "Access grants" }).waitFor();
		const panel = page.getByTestId("grants-panel");
		await panel.getByTestId("grant-row").filter({ hasText: viewer.name }).waitFor();

		await panel.getByTestId("grant-scope").selectOption("prefix");
		await panel.getByTestId("grant-environment").selectOption("production");
		await panel.getByTestId("grant-prefix").fill("STRIPE_");
		await panel.getByTestId("grantee-type").selectOption("service");
		await panel.getByTestId("grantee-service").fill("billing");
		await panel.getByTestId("grant-permission").selectOption("write");
		await panel.getByTestId("grant-expires").fill("2099-12-31");
		await panel.getByTestId("grant-add").click();
		const grant = panel.getByTestId("grant-row").filter({ hasText: "production/STRIPE_*" });
		await grant.waitFor();
		expect(await grant.textContent()).toContain("billing");
		expect(await grant.textContent()).toContain("write");
		expect(await grant.textContent()).toContain("2099");
		await shot(page, "12-access");

		await grant.getByTestId("grant-revoke").click();
		await page.getByTestId("confirm-button").click();
		await toast(page, "Grant revoked");
		await grant.waitFor({ state: "detached" });
		expect(await panel.getByTestId("grant-row").count()).toBe(1);
	});

	test("vault settings: adds an environment and rotates the data key", async () => {
		await page.getByTestId("nav-secrets-settings").click();
		await page.getByTestId("page-title").filter({ hasText: "Vault settings" }).waitFor();
		await page.getByTestId("key-version").filter({ hasText: "v1" }).waitFor();
		await page.getByTestId("settings-environment-new").fill("qa");
		await page.getByTestId("settings-environment-new").press("Enter");
		await page.getByTestId("settings-environment").filter({ hasText: "qa" }).waitFor();
		await page.getByTestId("settings-max-versions").fill("20");
		await page.getByTestId("settings-save").click();
		await toast(page, "Vault settings saved");

		await page.getByTestId("rotate-data-key").click();
		await page.getByTestId("confirm-button").click();
		await toast(page, "Data key rotated");
		await page.getByTestId("key-version").filter({ hasText: "v2" }).waitFor();
		await shot(page, "13-settings");

		// Values still read after the rotation, and the new environment is a tab.
		await openEnvironment(page, "production");
		await row(page, "STRIPE_KEY").getByTestId("secret-reveal").click();
		await row(page, "STRIPE_KEY").getByTestId("secret-value-text").filter({ hasText: "sk_test_51abc" }).waitFor();
		await page.locator('[data-testid="env-tab"][data-env="qa"]').click();
		await page.getByTestId("secrets-empty").filter({ hasText: "No secrets in qa yet" }).waitFor();
	});

	test("no uncaught errors or Content-Security-Policy violations in the pages", () => {
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
