// The embeddings pages in a browser, on the embedded platform: Ana creates a collection on the built-in lexical
// model, adds documents by pasting Markdown and uploading a TypeScript and a Python file, watches the ingest job's
// progress bar reach done, opens a document's chunks (named by function), and searches in hybrid, vector and
// filtered modes, seeing each result's scores. Then, with one job per organization at a time, a large ingest's bar
// moves while a second job waits queued and is cancelled, and the collection is re-embedded with another model.
import path from "path";
import { ARTIFACTS, describeWithBrowser, pageApi, signIn, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const ana = { name: "Ana", email: `ana-embeddings-${stamp}@example.com`, password: "correct horse battery" };

const markdown = [
	"# Account help",
	"",
	"## Reset your password",
	"Open Settings, choose Security and press Reset password. A link arrives by email within a minute.",
	"",
	"## Delete your account",
	"Deleting an account removes every project and cannot be undone."
].join("\n");

const typescript = [
	"// Billing: invoices and their totals.",
	"export function invoiceTotal(lines: { price: number; quantity: number }[]): number {",
	"\treturn lines.reduce((sum, l) => sum + l.price * l.quantity, 0);",
	"}",
	"",
	"export class InvoiceMailer {",
	"\tsend(to: string, total: number): string {",
	"\t\treturn `Invoice for ${to}: ${total}`;",
	"\t}",
	"}"
].join("\n");

const python = [
	"def parse_weather_report(text):",
	'    """Reads temperature and rainfall from a station report."""',
	"    values = dict(line.split(':') for line in text.splitlines())",
	"    return float(values['temperature']), float(values['rainfall'])"
].join("\n");

describeWithBrowser()("embeddings pages (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;

	beforeAll(async () => {
		// One job at a time, so a second job waits queued behind a large one; room for a large ingest's body.
		ui = await startUiPlatform("embeddings-browser", {
			timeoutMs: 20_000,
			env: { EMBEDDINGS_JOBS_PER_ORGANIZATION: "1", BODY_LIMIT: "20mb" }
		});
		const r = await fetch(`${ui.base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(ana)
		});
		expect(r.status).toBe(200);
		await signIn(ui.page, ui.base, ana);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("create a collection, ingest pasted and uploaded documents, watch the job finish, search with scores", async () => {
		const page = ui!.page;
		await page.goto(`${ui!.base}/embeddings`);
		await page.getByTestId("page-title").filter({ hasText: "Embeddings" }).waitFor();
		await page.getByTestId("collections-empty").waitFor();
		// The built-in model is listed and labelled for what it is.
		await page.getByTestId("embedding-model").filter({ hasText: "lexical (feature hashing), offline" }).waitFor();

		await page.getByTestId("collection-new").click();
		await page.getByTestId("collection-name").fill("Help center");
		await page.getByTestId("collection-description").fill("Articles and code for the search demo");
		const model = page.getByTestId("collection-model");
		expect(await model.locator("option:checked").textContent()).toContain("lexical (feature hashing), offline");
		await page.getByTestId("collection-save").click();
		await page.getByTestId("collection-title").filter({ hasText: "Help center" }).waitFor();
		await page.getByTestId("documents-empty").waitFor();

		// One pasted Markdown article and two uploaded source files, with metadata for the filter below.
		await page.getByTestId("paste-title").fill("Account help");
		await page.getByTestId("paste-kind").selectOption("markdown");
		await page.getByTestId("paste-text").fill(markdown);
		await page.getByTestId("paste-add").click();
		await page.getByTestId("file-input").setInputFiles([
			{ name: "billing.ts", mimeType: "text/plain", buffer: Buffer.from(typescript) },
			{ name: "weather.py", mimeType: "text/plain", buffer: Buffer.from(python) }
		]);
		await page.getByTestId("batch-row").nth(2).waitFor();
		expect(await page.getByTestId("batch-row").count()).toBe(3);
		await page.getByTestId("batch-metadata").fill("team=support");
		await page.getByTestId("ingest").click();

		// The jobs tab opens on the new job; its bar reaches 100% and the job completes.
		const job = page.getByTestId("job").first();
		await job.waitFor();
		await page.locator('[data-testid="job"][data-status="completed"]').waitFor();
		expect(await job.getByTestId("job-progress").getAttribute("aria-valuenow")).toBe("100");
		const [done, total] = (await job.getByTestId("job-count").textContent())!.split("/").map(s => Number(s.trim()));
		expect(done).toBe(total);
		expect(total).toBeGreaterThan(0);
		await page.screenshot({ path: path.join(ARTIFACTS, "embeddings-jobs.png") });

		// The collection counts its documents and chunks; the code file's chunks are named by their functions.
		await page.getByTestId("collection-documents").filter({ hasText: "3" }).waitFor();
		await page.getByTestId("tab-documents").click();
		await page.getByTestId("document-row").nth(2).waitFor();
		await page
			.locator('[data-testid="document-row"][data-source-id="billing.ts"]')
			.getByTestId("document-open")
			.click();
		const dialog = page.getByTestId("document-dialog");
		await dialog.getByTestId("chunk").first().waitFor();
		expect(await dialog.getByTestId("chunk-symbol").allTextContents()).toEqual(
			expect.arrayContaining([expect.stringContaining("invoiceTotal")])
		);
		await dialog.getByRole("button", { name: "Close" }).click();

		// Hybrid search: the password article first, with its vector and full-text scores.
		await page.getByTestId("tab-search").click();
		await page.getByTestId("search-query").fill("reset password email");
		await page.getByTestId("search-submit").click();
		const first = page.getByTestId("search-result").first();
		await first.waitFor();
		expect(await first.textContent()).toContain("Reset password");
		await first.getByTestId("result-score-vector").waitFor();
		await first.getByTestId("result-score-fulltext").waitFor();
		expect(await page.getByTestId("search-summary").textContent()).toContain("hybrid");
		await first.scrollIntoViewIfNeeded();
		await page.screenshot({ path: path.join(ARTIFACTS, "embeddings-search.png") });

		// Vector only: the weather parser for a query about rainfall, with a vector score and no full-text one.
		await page.getByTestId("search-mode-vector").check();
		await page.getByTestId("search-query").fill("rainfall temperature station");
		await page.getByTestId("search-submit").click();
		await page.getByTestId("search-summary").filter({ hasText: "vector" }).waitFor();
		const top = page.getByTestId("search-result").first();
		expect(await top.textContent()).toContain("parse_weather_report");
		await top.getByTestId("result-score-vector").waitFor();
		expect(await top.getByTestId("result-score-fulltext").count()).toBe(0);

		// A filter no document matches returns nothing; the documents' own metadata finds them again.
		await page.getByTestId("search-filter").fill("team=billing");
		await page.getByTestId("search-submit").click();
		await page.getByTestId("search-results").filter({ hasText: "Nothing matched." }).waitFor();
		await page.getByTestId("search-filter").fill("team=support|billing");
		await page.getByTestId("search-submit").click();
		await page.getByTestId("search-result").first().waitFor();

		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});

	test("a large ingest's bar moves live; a queued job is cancelled; re-embedding switches the model", async () => {
		const page = ui!.page;
		await page.goto(`${ui!.base}/embeddings`);
		await page.getByTestId("collection-row").first().waitFor();
		// A second model: the lexical embedder at 256 dimensions (no AI deployment).
		await page.getByTestId("model-name").fill("lexical-256");
		await page.getByTestId("model-dimensions").fill("256");
		await page.getByTestId("model-add").click();
		await page.locator('[data-testid="embedding-model"][data-name="lexical-256"]').waitFor();

		const collectionId = await page
			.locator('[data-testid="collection-row"][data-name="Help center"] [data-testid="collection-link"]')
			.getAttribute("href")
			.then(href => href!.split("/").pop()!);
		await page.goto(`${ui!.base}/embeddings/${collectionId}`);
		await page.getByTestId("collection-title").waitFor();
		await page.getByTestId("tab-jobs").click();
		await page.getByTestId("job").first().waitFor();

		const words = "index vector query chunk model score filter rank token search".split(" ");
		const big = Array.from({ length: 1000 }, (_, i) => ({
			sourceId: `bulk-${i}`,
			text: Array.from({ length: 180 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(" ") + ` doc${i}.`
		}));
		const first = await pageApi(page, "POST", `/api/embeddings/collections/${collectionId}/ingest`, {
			documents: big
		});
		expect(first.status).toBe(200);
		const second = await pageApi(page, "POST", `/api/embeddings/collections/${collectionId}/ingest`, {
			documents: [{ sourceId: "late", text: "A late document that never gets embedded." }]
		});
		expect(second.status).toBe(200);
		// The small job waits behind the large one (one job per organization here); cancelling it, at once, while
		// the large one has most of its work ahead, keeps it from ever running.
		const small = page.locator(`[data-testid="job"][data-id="${second.body.id}"]`);
		await small.and(page.locator('[data-status="queued"]')).getByTestId("job-cancel").click();
		await small.and(page.locator('[data-status="cancelled"]')).waitFor();

		// The large job's bar shows a value between the ends, carried by live notices (no reload here).
		const bigJob = page.locator(`[data-testid="job"]`).filter({ hasText: "/ 1,000" });
		await page.waitForFunction(() => {
			const bars = [...document.querySelectorAll('[data-testid="job-progress"]')];
			return bars.some(b => {
				const v = Number(b.getAttribute("aria-valuenow"));
				return v > 0 && v < 100;
			});
		});
		await page.screenshot({ path: path.join(ARTIFACTS, "embeddings-progress.png") });
		await bigJob.and(page.locator('[data-status="completed"]')).waitFor({ timeout: 120_000 });
		await page.getByTestId("collection-documents").filter({ hasText: "1,003" }).waitFor();

		// The documents come 50 a page, and a search by source id finds one among them.
		await page.getByTestId("tab-documents").click();
		await page.getByTestId("documents-page").filter({ hasText: "Page 1 of 21" }).waitFor();
		await page.getByTestId("documents-next").click();
		await page.getByTestId("documents-page").filter({ hasText: "Page 2 of 21" }).waitFor();
		await page.getByTestId("documents-search").fill("bulk-999");
		await page.locator('[data-testid="document-row"][data-source-id="bulk-999"]').waitFor();
		await page.getByTestId("documents-page").waitFor({ state: "detached" });
		expect(await page.getByTestId("document-row").count()).toBe(1);
		await page.getByTestId("tab-jobs").click();

		// Re-embed with the 256-dimension model: a reembed job runs, then the collection names the new model.
		await page.getByTestId("collection-reembed").click();
		await page
			.getByTestId("reembed-model")
			.selectOption({ label: "lexical-256 — lexical (feature hashing), offline · 256 dims" });
		await page.getByTestId("reembed-start").click();
		await page
			.locator('[data-testid="job"][data-kind="reembed"][data-status="completed"]')
			.waitFor({ timeout: 120_000 });
		await page.getByTestId("collection-model-name").filter({ hasText: "lexical-256" }).waitFor();
		await page.getByTestId("collection-status").filter({ hasText: "ready" }).waitFor();

		await page.getByTestId("tab-search").click();
		await page.getByTestId("search-query").fill("reset password");
		await page.getByTestId("search-submit").click();
		expect(await page.getByTestId("search-result").first().textContent()).toContain("Reset password");
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	}, 300_000);
});
