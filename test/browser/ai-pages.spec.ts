// What a new organization reaches for first, in the built UI against an embedded platform and a fake upstream:
// the home page's getting-started checklist ticking from real data, Test connection (ok and failing, never the key
// on the page), importing the upstream's models with their context size, Connect your IDE (its curl works with the
// key it made), and the playground's Markdown answers (rendered, highlighted, sanitized), JSON mode, tools and
// "View code". Screenshots of each page at 1400×900 and 390×844 go to SHOTS_DIR (default test-artifacts/).
import fs from "fs";
import path from "path";
import type { Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";
import { FakeOpenAI } from "../helpers/fake-openai";

const stamp = Date.now();
const owner = { name: "Grace Hopper", email: `grace-pages-${stamp}@example.com`, password: "correct horse battery" };
const UPSTREAM_KEY = "sk-fake-upstream-PAGES-5e1d";
const SHOTS = process.env.SHOTS_DIR ?? ARTIFACTS;
const XSS_ANSWER = [
	"Here is **bold** and a list:",
	"",
	"- one",
	"- two",
	"",
	"```js",
	"const answer = 42;",
	"```",
	"",
	'<img src="x" onerror="window.__xss = 1"> <script>window.__xss = 2</script>',
	'<a href="javascript:window.__xss=3">click</a> and [a link](javascript:window.__xss=4)'
].join("\n");

describeWithBrowser()("AI pages a new organization uses first (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	let session: { accessToken: string; organization: { id: string } };
	const up = new FakeOpenAI();
	let providerId = "";
	let apiKey = "";

	const rest = async (method: string, url: string, body?: unknown) => {
		const res = await fetch(base + url, {
			method,
			headers: {
				Authorization: `Bearer ${session.accessToken}`,
				"X-Organization-Id": session.organization.id,
				"Content-Type": "application/json"
			},
			body: body === undefined ? undefined : JSON.stringify(body)
		});
		const json: any = await res.json();
		if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
		return json;
	};
	const open = async (nav: string, title: string) => {
		await page.getByTestId(`nav-${nav}`).click();
		await page.getByTestId("page-title").filter({ hasText: title }).waitFor();
	};
	const step = (id: string) => page.locator(`[data-testid="getting-started-step"][data-step="${id}"]`);
	// Both sizes of one page; the phone view must not scroll sideways.
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
		// What sticks out, named, when something does: elements past the edge whose parent is not (and does not clip).
		const wide =
			phoneWidth > 391
				? await page.evaluate(() =>
						[...document.querySelectorAll<HTMLElement>("body *")]
							.filter(el => {
								const parent = el.parentElement!;
								return (
									el.getBoundingClientRect().right > 392 &&
									parent.getBoundingClientRect().right <= 392 &&
									getComputedStyle(parent).overflowX === "visible"
								);
							})
							.slice(0, 5)
							.map(el => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)
					)
				: [];
		await page.setViewportSize({ width: 1280, height: 800 });
		expect({ phoneWidth, wide }).toEqual({ phoneWidth: 390, wide: [] });
	}

	beforeAll(async () => {
		await up.start();
		ui = await startUiPlatform("ai-pages", { timeoutMs: 15_000, env: { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" } });
		({ page, base } = ui);
		const res = await fetch(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify(owner)
		});
		session = (await res.json()) as any;
		await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
		await up.stop();
	});

	afterEach(() => {
		expect(ui?.pageErrors).toEqual([]);
		expect(ui?.cspViolations).toEqual([]);
	});

	test("home: a new organization's checklist has nothing ticked", async () => {
		await signIn(page, base, owner);
		await page.getByTestId("getting-started").waitFor();
		expect(await page.getByTestId("getting-started-step").count()).toBe(5);
		// Every step is known (loaded) and not done.
		await page.getByTestId("getting-started-count").filter({ hasText: "0 of 5 done" }).waitFor();
		for (const id of ["secret", "provider", "deployment", "api-key", "connect"])
			expect(await step(id).getAttribute("data-done")).toBe("false");
		await page.getByTestId("home-ai-spend").filter({ hasText: "$0.00" }).waitFor();
		await shots("home-new");
	});

	test("providers: Test connection answers ok with the latency, and a refused key as a failure without the key", async () => {
		await rest("POST", "/api/secrets", { environment: "production", name: "UP_KEY", value: UPSTREAM_KEY });
		providerId = (
			await rest("POST", "/api/ai/providers", {
				name: "fake-upstream",
				base_url: up.baseUrl,
				api_key_secret: "UP_KEY"
			})
		).id;
		up.requiredKey = UPSTREAM_KEY;
		up.listed = [{ id: "imp-large", context_length: 32000 }, { id: "imp-small" }];
		await open("ai-providers", "Providers & models");
		const card = page.locator('[data-testid="provider-card"][data-name="fake-upstream"]');
		await card.getByTestId("provider-test").click();
		const result = card.getByTestId("provider-test-result");
		await result.filter({ hasText: "Connected" }).waitFor();
		expect(await result.getAttribute("data-ok")).toBe("true");
		expect(await result.textContent()).toMatch(/lists 2 model/);

		up.requiredKey = "sk-another-key";
		await card.getByTestId("provider-test").click();
		await result.filter({ hasText: "Connection failed" }).waitFor();
		expect(await result.getAttribute("data-ok")).toBe("false");
		expect(await result.textContent()).toMatch(/refused the request \(401\)/);
		expect(await page.content()).not.toContain(UPSTREAM_KEY);
		up.requiredKey = UPSTREAM_KEY;
	});

	test("providers: importing the upstream's models deploys the picked ones with their context size", async () => {
		const card = page.locator('[data-testid="provider-card"][data-name="fake-upstream"]');
		await card.getByTestId("provider-import").click();
		const dialog = page.getByTestId("import-models-dialog");
		const large = dialog.locator('[data-testid="import-row"][data-model="imp-large"]');
		await large.waitFor();
		await large.getByTestId("import-pick").check();
		expect(await large.getByTestId("import-context").inputValue()).toBe("32000");
		await large.getByTestId("import-name").fill("large");
		await shots("providers-import");
		await dialog.getByTestId("import-submit").click();
		await page.getByTestId("toast").filter({ hasText: "Models imported" }).first().waitFor();
		const row = card.locator('[data-testid="deployment-row"][data-name="large"]');
		await row.waitFor();
		expect(await row.textContent()).toContain("imp-large");
		expect(await row.textContent()).toContain("32,000 ctx");
		// Not used yet: the routers know nothing of it.
		await row.getByTestId("deployment-health").filter({ hasText: "No traffic" }).waitFor();
		// Importing again offers it as deployed already.
		await card.getByTestId("provider-import").click();
		await dialog.locator('[data-testid="import-row"][data-model="imp-large"] .badge').waitFor();
		expect(await dialog.locator('[data-model="imp-large"] [data-testid="import-pick"]').isDisabled()).toBe(true);
		await dialog.getByTestId("import-cancel").click();
		await dialog.getByTestId("import-submit").waitFor({ state: "detached" });
		up.set("imp-large", {});
		await shots("providers");

		// Home ticks what exists now: a secret, a provider, a deployment; no key yet, nothing connected.
		await open("home", "Home");
		await page.getByTestId("getting-started-count").filter({ hasText: "3 of 5 done" }).waitFor();
		for (const [id, done] of [
			["secret", "true"],
			["provider", "true"],
			["deployment", "true"],
			["api-key", "false"],
			["connect", "false"]
		])
			expect(await step(id).getAttribute("data-done")).toBe(done);
	});

	test("connect: the snippets carry the gateway's base URL and a new key, and the curl shown works", async () => {
		await open("ai-connect", "Connect your IDE");
		expect(await page.getByTestId("connect-base-url").textContent()).toBe(`${base}/v1`);
		await page.locator('[data-testid="connect-model"][data-name="large"]').waitFor();
		await page.getByTestId("connect-key-name").fill("My laptop");
		await page.getByTestId("connect-key-create").click();
		const key = (await page.getByTestId("connect-key").textContent())!.trim();
		expect(key.length).toBeGreaterThan(20);
		apiKey = key;

		const snippet = async (tab: string) => {
			await page.locator(`[data-testid="connect-tab"][data-tab="${tab}"]`).click();
			return (await page.getByTestId("connect-snippet").getByTestId("code-text").textContent())!;
		};
		for (const tab of ["continue", "js", "python"]) {
			const code = await snippet(tab);
			expect(code).toContain(`${base}/v1`);
			expect(code).toContain(key);
			expect(code).toContain("large");
		}
		expect(await snippet("anthropic")).toContain(`baseURL: "${base}"`);
		expect(await snippet("vscode")).toContain(`"url": "${base}/v1"`);
		expect(await snippet("cursor")).toContain(`${base}/v1`);

		// The curl snippet, run as written: its URL, headers and body.
		const curl = await snippet("curl");
		const url = /^curl (\S+)/.exec(curl)![1];
		const headers = Object.fromEntries([...curl.matchAll(/-H "([^:]+): ([^"]+)"/g)].map(m => [m[1], m[2]]));
		const body = /-d '([\s\S]*)'$/.exec(curl)![1];
		expect(url).toBe(`${base}/v1/chat/completions`);
		expect(headers.Authorization).toBe(`Bearer ${key}`);
		const res = await fetch(url, { method: "POST", headers, body });
		expect(res.status).toBe(200);
		const answer: any = await res.json();
		expect(answer.choices[0].message.content).toContain("echo(imp-large)");

		// The copy button copies the snippet.
		await page.getByTestId("connect-snippet-copy").click();
		expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(curl);
		await shots("connect");
	});

	test("playground: a Markdown answer is rendered and highlighted, and its HTML never runs", async () => {
		up.set("imp-large", { content: XSS_ANSWER });
		await open("ai-playground", "Playground");
		await page.getByTestId("chat-model").selectOption("large");
		await page.getByTestId("chat-input").fill("Show me markdown");
		await page.getByTestId("chat-input").press("Enter");
		const answer = page.locator('[data-testid="chat-message"][data-role="assistant"]').last();
		await page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="done"]').waitFor();
		const text = answer.getByTestId("chat-message-text");
		expect(await text.locator("strong").textContent()).toBe("bold");
		expect(await text.locator("li").count()).toBe(2);
		expect(await text.locator("pre code .hljs-keyword").first().textContent()).toBe("const");
		// Raw HTML is shown as text, never made into elements; a javascript: link loses its target. Nothing ran, and
		// no handler was ever compiled (the afterEach finds no CSP report).
		expect(await text.textContent()).toContain('<img src="x" onerror="window.__xss = 1">');
		expect(await text.locator("script, img, [onerror]").count()).toBe(0);
		expect(await text.locator('a[href^="javascript"]').count()).toBe(0);
		expect(await text.locator("a", { hasText: "a link" }).count()).toBe(1);
		await page.waitForTimeout(300);
		expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
		// Which model served it.
		expect(await answer.getByTestId("chat-meta-served").textContent()).toContain("large");
		await shots("playground");
	});

	test("playground: JSON mode and tools go with the request, tool calls are shown, and View code shows it", async () => {
		up.set("imp-large", { toolCall: { name: "get_weather", arguments: '{"city":"Paris"}' } });
		await page.getByTestId("chat-json-mode").check();
		await page.getByTestId("chat-tools-toggle").check();
		await page.getByTestId("chat-tools").fill("{ not json");
		await page.getByTestId("chat-tools-error").waitFor();
		expect(await page.getByTestId("chat-send").isDisabled()).toBe(true);
		await page.getByTestId("chat-tools-example").click();
		expect(await page.getByTestId("chat-tools-error").count()).toBe(0);
		await page.getByTestId("chat-input").fill("Weather in Paris?");
		await page.getByTestId("chat-input").press("Enter");
		const answer = page.locator('[data-testid="chat-message"][data-role="assistant"]').last();
		await answer.getByTestId("chat-tool-call").waitFor();
		expect(await answer.getByTestId("chat-tool-name").textContent()).toBe("get_weather");
		expect(JSON.parse((await answer.getByTestId("chat-tool-args").textContent())!)).toEqual({ city: "Paris" });
		const sent = up.requests.filter(r => r.path === "/v1/chat/completions").at(-1)!.body;
		expect(sent.response_format).toEqual({ type: "json_object" });
		expect(sent.tools[0].function.name).toBe("get_weather");

		await answer.getByTestId("chat-view-code").click();
		const dialog = page.getByTestId("request-code-dialog");
		const code = () => dialog.getByTestId("code-text").textContent();
		expect(await code()).toContain(`curl -N ${base}/v1/chat/completions`);
		expect(await code()).toContain('"response_format"');
		expect(await code()).toContain('"get_weather"');
		await dialog.locator('[data-testid="request-code-lang"][data-lang="python"]').click();
		expect(await code()).toContain(`base_url="${base}/v1"`);
		expect(await code()).toContain('"stream": True');
		await shots("playground-code");
		await dialog.getByTestId("request-code-close").click();
		await page.getByTestId("chat-json-mode").uncheck();
		await page.getByTestId("chat-tools-toggle").uncheck();
	});

	test("providers: a deployment that keeps failing shows as cooling down, and home shows its provider failing", async () => {
		const dead = await rest("POST", "/api/ai/providers", {
			name: "dead-upstream",
			base_url: "http://127.0.0.1:9/v1",
			timeout_ms: 1000
		});
		await rest("POST", "/api/ai/deployments", { provider_id: dead.id, name: "offline", provider_model: "x" });
		for (let i = 0; i < 3; i++) {
			const res = await fetch(`${base}/v1/chat/completions`, {
				method: "POST",
				headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
				body: JSON.stringify({ model: "offline", messages: [{ role: "user", content: "hi" }] })
			});
			expect(res.status).toBe(502);
		}
		await open("ai-providers", "Providers & models");
		const row = page.locator('[data-testid="deployment-row"][data-name="offline"]');
		const badge = row.getByTestId("deployment-health");
		await badge.filter({ hasText: "Cooling down" }).waitFor();
		expect(await badge.getAttribute("title")).toMatch(/skipped by the router until/);
	});

	test("home: the checklist ticks from real data, with today's usage and provider health", async () => {
		await open("home", "Home");
		await page.getByTestId("getting-started").waitFor({ state: "detached" });
		await page
			.getByTestId("home-ai-requests")
			.filter({ hasText: /^[1-9]/ })
			.waitFor();
		await page
			.locator('[data-testid="home-provider"]')
			.filter({ hasText: "fake-upstream" })
			.filter({ hasText: "Healthy" })
			.waitFor();
		await page
			.locator('[data-testid="home-provider"][data-status="failing"]')
			.filter({ hasText: "dead-upstream" })
			.waitFor();
		expect(await page.getByTestId("home-activity-item").count()).toBeGreaterThan(0);
		expect(providerId).toBeTruthy();
		await shots("home");
	});
});
