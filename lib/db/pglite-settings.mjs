// PGlite's start-up options, shared by the worker that serves the embedded database (pglite-worker.mjs) and the
// short-lived process that creates it (pglite-create.mjs). Plain JavaScript for the same reason as the worker.
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";

// PostgreSQL's own default of 128 MB shared_buffers is memory the WebAssembly heap takes and never gives back
// (bench/README.md, "Memory"). PGlite reads and writes the data directory through Node's file system, so pages
// outside this cache still come from the OS page cache rather than the disk. wal_buffers follows (1/32 of it).
export const pgliteOptions = {
	extensions: { vector },
	startParams: [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"]
};
