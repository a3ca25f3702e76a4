// The planning UI in headless Chromium: tasks on the kanban board, a blocked task's drag to "In Progress" refused
// with its blocker named, accepted once the blocker is dragged to "Done"; a plan approved, edited (needs approval
// again) and approved again; a plan generated from a goal by a scripted model (pending while the model answers, the
// tasks shown after; a malformed answer shown as an error). Skipped when no Chromium is installed, unless REQUIRE_BROWSER=1.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, pageApi, signUp, startUiPlatform } from "../helpers/browser";
import { waitUntil } from "../helpers/wait";
import { ScriptedModel } from "../ai/agent-model";

const owner = {
	name: "Ada Lovelace",
	email: `ada-planning-${Date.now()}@example.com`,
	password: "correct horse battery"
};

describeWithBrowser()("planning UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	let upstream = "";
	const model = new ScriptedModel();
	const column = (name: string) => page.locator(`.column[data-state="${name}"]`);
	const card = (title: string) => page.locator(".card", { hasText: title });

	beforeAll(async () => {
		upstream = await model.start();
		ui = await startUiPlatform("planning-browser", {
			timeoutMs: 15_000,
			env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }
		});
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await model.stop();
	});

	test("board: a blocked task cannot start until its blocker is done", async () => {
		await signUp(page, base, owner);
		await page.getByTestId("nav-planning").click();
		for (const title of ["Write docs", "Ship release"]) {
			await page.getByLabel("New entity title").fill(title);
			await page.getByRole("button", { name: "Add", exact: true }).click();
			await column("Backlog").locator(".card", { hasText: title }).waitFor();
		}
		const { body: list } = await pageApi(page, "GET", "/api/planning/entities?pageSize=100");
		const id = (t: string) => list.rows.find((r: any) => r.title === t).id;
		expect(
			(
				await pageApi(page, "POST", "/api/planning/relations", {
					kind: "blocks",
					source_id: id("Write docs"),
					target_id: id("Ship release")
				})
			).status
		).toBe(200);

		await card("Ship release").dragTo(column("In Progress"));
		await page.getByRole("alert").filter({ hasText: "blocked by" }).filter({ hasText: "Write docs" }).waitFor();
		await column("Backlog").locator(".card", { hasText: "Ship release" }).waitFor();

		await card("Write docs").dragTo(column("Done"));
		await column("Done").locator(".card", { hasText: "Write docs" }).waitFor();
		await card("Ship release").dragTo(column("In Progress"));
		await column("In Progress").locator(".card", { hasText: "Ship release" }).waitFor();

		await card("Ship release").click();
		await page.locator(".entity-detail").filter({ hasText: "blocked by Write docs" }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "planning-board.png"), fullPage: true });
	});

	test("plans: approve, edit (needs approval again), approve", async () => {
		await page.getByRole("button", { name: "Plans" }).click();
		await page.getByLabel("New plan title").fill("Release 1.0");
		await page.getByRole("button", { name: "New plan" }).click();
		const approval = page.locator(".approval");
		await approval.filter({ hasText: "not approved" }).waitFor();
		await page.getByRole("button", { name: "Approve" }).click();
		await approval.filter({ hasText: "approved" }).filter({ hasNotText: "not" }).waitFor();
		await page.getByRole("button", { name: "Add step" }).click();
		await page.getByRole("button", { name: "Save plan" }).click();
		await approval.filter({ hasText: "needs approval" }).waitFor();
		await page.getByRole("button", { name: "Approve" }).click();
		await approval.filter({ hasText: "Revision 2 — approved" }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "planning-plan.png"), fullPage: true });
	});

	test("plans: generate from a goal, pending while the model answers; a malformed answer is shown", async () => {
		const provider = await pageApi(page, "POST", "/api/ai/providers", { name: "scripted", base_url: upstream });
		expect(provider.status).toBe(200);
		for (const name of ["planner-ui", "broken-ui"])
			expect(
				(
					await pageApi(page, "POST", "/api/ai/deployments", {
						provider_id: provider.body.id,
						name,
						provider_model: name
					})
				).status
			).toBe(200);
		const category = await pageApi(page, "POST", "/api/knowledge/categories", { name: "Runbooks" });
		const article = await pageApi(page, "POST", "/api/knowledge/articles", {
			category_id: category.body.id,
			title: "Launch checklist",
			body: "Before a launch to customers: the announcement, the call, the rollback.",
			status: "published"
		});
		expect(article.status).toBe(200);
		await waitUntil(
			"the article searchable",
			() => pageApi(page, "POST", "/api/knowledge/search", { query: "launch" }),
			r => r.body?.results?.some((x: any) => x.id === article.body.id)
		);
		// The model cites the articles it was offered (their ids are in the prompt).
		model.script("planner-ui", body => ({
			content: JSON.stringify({
				title: "Launch plan",
				steps: [{ kind: "manual_approval", title: "Sign off", config: {} }],
				tasks: [
					{ title: "Write the announcement", article_ids: [] },
					{
						title: "Book the launch call",
						priority: "high",
						article_ids: JSON.stringify(body.messages).includes(article.body.id) ? [article.body.id] : []
					}
				]
			})
		}));
		model.script("broken-ui", () => ({ content: "I would rather chat about it." }));
		model.holding.add("planner-ui");

		await page.getByRole("button", { name: "Plans" }).click();
		await page.getByText("Generate from goal").click();
		await page.getByLabel("Goal to plan").fill("Launch version 2 to every customer");
		await page.getByLabel("Model", { exact: true }).fill("planner-ui");
		await page.getByRole("button", { name: "Generate", exact: true }).click();
		await page.getByRole("status").filter({ hasText: "Asking the model" }).waitFor();
		await page.getByRole("button", { name: "Generating…" }).waitFor();
		expect(await page.getByRole("button", { name: "Generating…" }).isDisabled()).toBe(true);
		await waitUntil(
			"the model holding the request",
			async () => model.waiting(),
			n => n > 0
		);
		model.holding.delete("planner-ui");
		model.release();
		await page.getByRole("status").filter({ hasText: "Generated “Launch plan” with 2 tasks" }).waitFor();
		await page
			.locator(".plan-generator li", { hasText: "Book the launch call" })
			.getByRole("link", { name: "Launch checklist" })
			.waitFor();
		// The new plan opens in the editor.
		await waitUntil(
			"the generated plan in the editor",
			() => page.getByLabel("Plan title", { exact: true }).inputValue(),
			v => v === "Launch plan"
		);
		await page.screenshot({ path: path.join(ARTIFACTS, "planning-generated.png"), fullPage: true });

		await page.getByLabel("Goal to plan").fill("Another goal");
		await page.getByLabel("Model", { exact: true }).fill("broken-ui");
		await page.getByRole("button", { name: "Generate", exact: true }).click();
		await page.locator(".plan-generator [role=alert]").filter({ hasText: "not JSON" }).waitFor();

		// The task on the board links to the article it was made from.
		await page.getByRole("button", { name: "Board" }).click();
		await card("Book the launch call").click();
		await page.locator(".entity-detail .articles").getByRole("link", { name: "article 1" }).waitFor();
	});
});
