// `npm start` runs this first: a fresh checkout has no built UI yet (public/ is build output), so build it once.
import fs from "fs";
import path from "path";
import { spawnSync } from "child_process";
import { ROOT as root } from "./paths";

if (!fs.existsSync(path.join(root, "public", "index.html"))) {
	if (!fs.existsSync(path.join(root, "node_modules", "vite"))) {
		console.warn("The web UI is not built and vite is not installed (production install): serving the API only.");
	} else {
		console.log("Building the web UI (first start)…");
		const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
		if (r.status !== 0) console.warn("Building the web UI failed: serving the API only.");
	}
}
