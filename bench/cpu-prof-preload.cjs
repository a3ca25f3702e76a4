// Preloaded by NODE_OPTIONS="--require bench/cpu-prof-preload.cjs" (which refuses --cpu-prof itself) into platform
// nodes started by test helpers: a V8 CPU profile of the whole life of the process, written to CPU_PROF_DIR at exit.
const inspector = require("inspector");
const fs = require("fs");
const path = require("path");
const session = new inspector.Session();
session.connect();
session.post("Profiler.enable");
session.post("Profiler.setSamplingInterval", { interval: 1000 });
session.post("Profiler.start");
process.on("exit", () => {
	// An in-thread session answers synchronously, so the profile is written before the process ends.
	session.post("Profiler.stop", (err, res) => {
		if (err) return;
		const name = `${process.env.NODE_ID ?? "node"}-${process.pid}.cpuprofile`;
		fs.writeFileSync(path.join(process.env.CPU_PROF_DIR ?? ".", name), JSON.stringify(res.profile));
	});
});
