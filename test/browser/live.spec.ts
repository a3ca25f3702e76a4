// Pages that keep up, as two members of one organization see them in two browsers: when Ana creates a team, a secret
// or a provider, Ben's open list (and the playground's models) shows it without a reload and a toast says who did
// what; Carl, in another organization, sees nothing of it. Ben, a member without a grant, is shown "New secret" disabled with the reason,
// and enabled as soon as Ana grants him write access, again without a reload.
import path from "path";
import type { Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const password = "correct horse battery";
const ana = { name: "Ana", email: `ana-${stamp}@example.com`, password };
const ben = { name: "Ben", email: `ben-${stamp}@example.com`, password };
const carl = { name: "Carl", email: `carl-${stamp}@example.com`, password };

describeWithBrowser()("live pages and permission-aware buttons (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let benPage: Page, carlPage: Page;
	let base = "";
	let token = "";
	let org = "";

	// Ana works through the API: what matters here is what the others' open pages do.
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
	const toast = (p: Page, text: string | RegExp) => p.getByTestId("toast").filter({ hasText: text }).first();
	async function open(p: Page, nav: string, title: string) {
		await p.getByTestId(`nav-${nav}`).click();
		await p.getByTestId("page-title").filter({ hasText: title }).waitFor();
	}

	beforeAll(async () => {
		ui = await startUiPlatform("live-browser", {
			timeoutMs: 15_000,
			env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }
		});
		base = ui.base;
		for (const u of [ana, ben, carl]) {
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
		benPage = ui.watch(await (await ui.browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage());
		carlPage = ui.watch(await (await ui.browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage());
		await signIn(benPage, base, ben);
		await signIn(carlPage, base, carl);
		// Ben works in Ana's organization.
		await benPage.getByTestId("org-switcher").click();
		await benPage.getByTestId("org-option").filter({ hasText: "Ana's workspace" }).click();
		await benPage.getByTestId("current-org").filter({ hasText: "Ana's workspace" }).waitFor();
		await benPage.getByTestId("live-indicator").filter({ hasText: "Live" }).waitFor();
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("a team Ana creates appears in Ben's open list with a toast; Carl's list stays as it was", async () => {
		await open(benPage, "organization-teams", "Teams");
		await open(carlPage, "organization-teams", "Teams");
		await asAna("POST", "/api/auth/teams", { name: "Backend" });
		await benPage.getByTestId("team-item").filter({ hasText: "Backend" }).waitFor();
		await toast(benPage, "Ana created team Backend").waitFor();
		await benPage.screenshot({ path: path.join(ARTIFACTS, "live-team.png") });
		await carlPage.waitForTimeout(500);
		expect(await carlPage.getByTestId("team-item").count()).toBe(0);
		expect(await carlPage.getByTestId("toast").count()).toBe(0);
	});

	test("Ben may not create a secret without a grant: the button says why; a grant enables it live", async () => {
		await open(benPage, "secrets", "Secrets");
		await benPage.locator('[data-testid="env-tab"][data-env="production"]').click();
		const newSecret = benPage.getByTestId("secret-new");
		await expect(newSecret.isDisabled()).resolves.toBe(true);
		expect(await newSecret.getAttribute("title")).toMatch(/write grant on production/);

		await asAna("POST", "/api/secrets", { environment: "production", name: "DATABASE_URL", value: "pg://x" });
		await benPage.locator('[data-testid="secret-row"][data-name="DATABASE_URL"]').waitFor();
		await toast(benPage, "Ana created secret production/DATABASE_URL").waitFor();
		const edit = benPage.locator(
			'[data-testid="secret-row"][data-name="DATABASE_URL"] [data-testid="secret-edit"]'
		);
		await expect(edit.isDisabled()).resolves.toBe(true);

		await asAna("POST", "/api/secrets/grants", {
			environment: "production",
			namePrefix: "",
			permission: "write",
			granteeType: "user",
			granteeId: (await asAna("GET", `/api/auth/organizations/${org}/members`)).find(
				(m: { email: string }) => m.email === ben.email
			).userId
		});
		await benPage.waitForFunction(
			() => !(document.querySelector('[data-testid="secret-new"]') as HTMLButtonElement).disabled
		);
		await expect(edit.isDisabled()).resolves.toBe(false);
		await benPage.screenshot({ path: path.join(ARTIFACTS, "live-secrets.png") });
	});

	test("a provider Ana adds appears on Ben's open providers page", async () => {
		await open(benPage, "ai-providers", "Providers");
		await asAna("POST", "/api/ai/providers", { name: "Local LLM", base_url: "http://127.0.0.1:9/v1" });
		await benPage.locator('[data-testid="provider-card"][data-name="Local LLM"]').waitFor();
		await toast(benPage, "Ana created provider Local LLM").waitFor();

		// The playground's model list follows too: a model Ana deploys can be picked at once.
		await open(benPage, "ai-playground", "Playground");
		await benPage.getByTestId("playground-no-models").waitFor();
		const provider = (await asAna("GET", "/api/ai/providers")).rows[0];
		await asAna("POST", "/api/ai/deployments", {
			provider_id: provider.id,
			name: "live-model",
			provider_model: "m"
		});
		await benPage.locator('[data-testid="chat-model"] option[value="live-model"]').waitFor({ state: "attached" });
		expect(await carlPage.getByTestId("toast").count()).toBe(0);
		expect(ui!.pageErrors).toEqual([]);
	});
});
