// What every browser test needs: the UI built from the current sources, a free port for the embedded platform, and
// Debian's Chromium driven by playwright-core. Skipped without Chromium unless REQUIRE_BROWSER=1.
import fs from "fs";
import net from "net";
import path from "path";
import { execFileSync } from "child_process";
import { chromium, type Browser } from "playwright-core";

export const ROOT = path.resolve(__dirname, "../..");
export const ARTIFACTS = path.join(ROOT, "test-artifacts");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function describeWithBrowser(): jest.Describe {
	if (fs.existsSync(CHROMIUM)) return describe;
	if (process.env.REQUIRE_BROWSER === "1") throw new Error(`REQUIRE_BROWSER=1 but no Chromium at ${CHROMIUM}`);
	return describe.skip;
}

export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.once("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address() as net.AddressInfo;
			srv.close(() => resolve(port));
		});
	});
}

// Always from the current sources, so a test never passes on a stale public/.
export function buildUi() {
	execFileSync(process.execPath, [path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "frontend/vite.config.ts", "--logLevel", "error"], { cwd: ROOT, stdio: "pipe" });
	if (!fs.existsSync(path.join(ROOT, "public/index.html"))) throw new Error("the UI build left no public/index.html");
	fs.mkdirSync(ARTIFACTS, { recursive: true });
}


export function launchChromium(): Promise<Browser> {
	return chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
}
