// What every browser test needs: the UI built from the current sources, a free port for the embedded platform, and
// Debian's Chromium driven by playwright-core. Skipped without Chromium unless REQUIRE_BROWSER=1.
import crypto from "crypto";
import fs from "fs";
import os from "os";
import path from "path";
import { execFileSync } from "child_process";
import { chromium, type Browser, type BrowserContextOptions, type Page } from "playwright-core";
import { startNode } from "./process";
import { freePort } from "./ports";

export const ROOT = path.resolve(__dirname, "../..");
export const ARTIFACTS = path.join(ROOT, "test-artifacts");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function describeWithBrowser(): jest.Describe {
	if (fs.existsSync(CHROMIUM)) return describe;
	if (process.env.REQUIRE_BROWSER === "1") throw new Error(`REQUIRE_BROWSER=1 but no Chromium at ${CHROMIUM}`);
	return describe.skip;
}

// Always from the current sources, so a test never passes on a stale public/: built again whenever what the UI is
// built from (frontend/, the lib/ files it imports, the lockfile) differs from what public/ was built from, which
// public/.sources names by hash. A run of the browser suites builds once instead of once per suite.
const UI_SOURCES = ["frontend", "lib", "package-lock.json"];
const BUILT_FROM = path.join(ROOT, "public/.sources");

function sourcesHash(): string {
	const hash = crypto.createHash("sha256");
	const visit = (rel: string) => {
		const abs = path.join(ROOT, rel);
		if (fs.statSync(abs).isDirectory()) {
			for (const name of fs.readdirSync(abs).sort()) if (name !== "node_modules") visit(path.join(rel, name));
		} else hash.update(`${rel}\0`).update(fs.readFileSync(abs)).update("\0");
	};
	for (const rel of UI_SOURCES) visit(rel);
	return hash.digest("hex");
}

export function buildUi() {
	const sources = sourcesHash();
	const built = fs.existsSync(path.join(ROOT, "public/index.html")) && fs.existsSync(BUILT_FROM);
	if (!built || fs.readFileSync(BUILT_FROM, "utf8") !== sources) {
		execFileSync(
			process.execPath,
			[
				path.join(ROOT, "node_modules/vite/bin/vite.js"),
				"build",
				"--config",
				"frontend/vite.config.ts",
				"--logLevel",
				"error"
			],
			{ cwd: ROOT, stdio: "pipe" }
		);
		if (!fs.existsSync(path.join(ROOT, "public/index.html")))
			throw new Error("the UI build left no public/index.html");
		fs.writeFileSync(BUILT_FROM, sources);
	}
	fs.mkdirSync(ARTIFACTS, { recursive: true });
}

export function launchChromium(): Promise<Browser> {
	return chromium.launch({
		executablePath: CHROMIUM,
		args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
	});
}

// The embedded platform (every infrastructure URL empty) on a free port, serving the UI built from the current
// sources, and Chromium with one page open on a 1280×800 context. Pages passed to `watch` (the first one is)
// record uncaught errors and Content-Security-Policy violations, which every browser test expects to stay empty.
export async function startUiPlatform(
	name: string,
	// `env` may depend on the port (a URL of the platform the node must know, e.g. an OAuth callback).
	opts: {
		timeoutMs: number;
		context?: BrowserContextOptions;
		env?: Record<string, string> | ((port: number) => Record<string, string>);
	}
) {
	buildUi();
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `cide-${name}-`));
	const port = await freePort();
	const node = startNode(
		{
			DATA_DIR: dataDir,
			PORT: String(port),
			TRANSPORTER: "",
			CACHER: "",
			DATABASE_URL: "",
			CHANNELS_URL: "",
			REDIS_URL: "",
			...(typeof opts.env === "function" ? opts.env(port) : opts.env)
		},
		{ waitUp: false }
	);
	let browser: Browser | undefined;
	const stop = async () => {
		await browser?.close();
		await node.stop("SIGKILL");
		fs.rmSync(dataDir, { recursive: true, force: true });
	};
	try {
		// A first start creates the embedded database: a minute or more on a loaded machine, as the node says.
		await node.waitFor(/Coder IDE node .* up/, 150_000);
		browser = await launchChromium();
		const pageErrors: string[] = [];
		const cspViolations: string[] = [];
		const watch = (p: Page) => {
			p.setDefaultTimeout(opts.timeoutMs);
			p.on("pageerror", err => pageErrors.push(err.message));
			p.on(
				"console",
				msg =>
					msg.type() === "error" &&
					/Content Security Policy/i.test(msg.text()) &&
					cspViolations.push(msg.text())
			);
			return p;
		};
		const page = watch(
			await (await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts.context })).newPage()
		);
		return { base: `http://127.0.0.1:${port}`, browser, page, watch, pageErrors, cspViolations, stop };
	} catch (err) {
		await stop();
		throw err;
	}
}

// Signs a new user up through the form and waits for the shell to greet them.
export async function signUp(page: Page, base: string, user: { name: string; email: string; password: string }) {
	await page.goto(base + "/sign-up");
	await page.getByLabel("Name").fill(user.name);
	await page.getByLabel("Email").fill(user.email);
	await page.getByLabel("Password").fill(user.password);
	await page.getByTestId("submit").click();
	await page
		.getByTestId("greeting")
		.filter({ hasText: user.name.split(" ")[0] })
		.waitFor();
}

// Signs an existing user in through the form and waits for the shell to greet them.
export async function signIn(page: Page, base: string, user: { name: string; email: string; password: string }) {
	await page.goto(base + "/sign-in");
	await page.getByLabel("Email").fill(user.email);
	await page.getByLabel("Password").fill(user.password);
	await page.getByTestId("submit").click();
	await page
		.getByTestId("greeting")
		.filter({ hasText: user.name.split(" ")[0] })
		.waitFor();
}

// The REST API as the signed-in page calls it: its session's token and organization, from inside the page.
export function pageApi(page: Page, method: string, url: string, body?: unknown) {
	return page.evaluate(
		async ([method, url, body]) => {
			const session = JSON.parse(localStorage.getItem("coder-ide.session")!);
			const res = await fetch(url as string, {
				method: method as string,
				headers: {
					authorization: `Bearer ${session.accessToken}`,
					"x-organization-id": localStorage.getItem("coder-ide.organization")!,
					...(body ? { "content-type": "application/json" } : {})
				},
				body: body ? JSON.stringify(body) : undefined
			});
			return { status: res.status, body: await res.json() };
		},
		[method, url, body] as const
	);
}
