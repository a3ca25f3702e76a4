// The execution UI in headless Chromium, on the embedded platform (one process, PGlite): an approved plan is run from
// the page; the timeline shows the step waiting for approval, the Approve button lets the run go on, the webhook
// step succeeds live, and Rollback undoes it (the receiver in the test sees the undo request). Skipped when no
// Chromium is installed, unless REQUIRE_BROWSER=1.
import { type Page } from "playwright-core";
import { describeWithBrowser, pageApi, signUp, startUiPlatform } from "../helpers/browser";
import { WebhookReceiver } from "../execution/webhook-receiver";

const owner = {
	name: "Grace Hopper",
	email: `grace-exec-${Date.now()}@example.com`,
	password: "correct horse battery"
};

describeWithBrowser()("execution UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const hook = new WebhookReceiver();
	const step = (n: number) => page.locator(".run-timeline .step").nth(n);

	beforeAll(async () => {
		await hook.start();
		ui = await startUiPlatform("execution-browser", {
			timeoutMs: 20_000,
			env: { EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1", EXECUTION_POLL_MS: "200" }
		});
		({ page, base } = ui);
	}, 180_000);

	afterAll(async () => {
		await ui?.stop();
		await hook.stop();
	});

	test("run an approved plan, approve its waiting step, watch it finish, roll it back", async () => {
		await signUp(page, base, owner);
		const steps = [
			{ kind: "manual_approval", title: "Sign-off", config: { message: "Go?" } },
			{
				kind: "http_webhook",
				title: "Deploy",
				config: { url: `${hook.url}/deploy`, undo: { url: `${hook.url}/undeploy`, method: "POST" } }
			}
		];
		const { body: plan } = await pageApi(page, "POST", "/api/planning/plans", { title: "Release 1.0", steps });
		await pageApi(page, "POST", `/api/planning/plans/${plan.id}/approve`, { revision: plan.revision });

		await page.getByTestId("nav-execution").click();
		await page.getByLabel("Approved plan").selectOption({ label: "Release 1.0 (revision 1)" });
		await page.getByRole("button", { name: "Run", exact: true }).click();
		await step(0).filter({ hasText: "waiting approval" }).waitFor();
		await page.locator(".run-status", { hasText: "run waiting" }).waitFor();
		expect(hook.received).toEqual([]);

		await step(0).getByRole("button", { name: "Approve" }).click();
		await step(1).filter({ hasText: "succeeded" }).waitFor();
		await page.locator(".run-status", { hasText: "run completed — plan succeeded" }).waitFor();
		expect(hook.received.map(r => r.path)).toEqual(["/deploy"]);
		await step(1).locator("summary", { hasText: "Logs" }).click();
		await step(1).locator(".logs li", { hasText: "succeeded" }).waitFor();

		await page.getByRole("button", { name: "Rollback", exact: true }).click();
		await step(1).filter({ hasText: "undone" }).waitFor();
		await page.locator(".run-status", { hasText: "rollback completed" }).waitFor();
		expect(hook.received.map(r => r.path)).toEqual(["/deploy", "/undeploy"]);
		await expect(page.getByRole("button", { name: "Rollback", exact: true }).count()).resolves.toBe(0);
	});
});
