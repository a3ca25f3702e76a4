// Creates the embedded database (PGlite's initdb) in a process of its own, which then exits. initdb runs in
// WebAssembly beside a second PGlite instance and a copy of its heap: about 700 MiB for a few seconds, which a
// WebAssembly memory never returns, so done in the node itself it would stay its peak RSS for good.
// Usage: node pglite-create.mjs <dir>; exit 0 once the directory holds a database, else the reason on stderr.
import { PGlite } from "@electric-sql/pglite";
import { pgliteOptions } from "./pglite-settings.mjs";

try {
	const db = await PGlite.create(process.argv[2], pgliteOptions);
	await db.close();
} catch (err) {
	process.stderr.write(String(err?.message ?? err));
	process.exit(1);
}
