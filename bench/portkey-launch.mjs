// Starts Portkey's open-source gateway (installed by bench/ai.ts into bench/.cache/portkey) on 127.0.0.1 only:
// its start script listens on every interface and clears the terminal, neither of which a bench wants.
// PORTKEY_ENTRY is its build/start-server.js, PORTKEY_PORT the port.
import net from "node:net";
import { pathToFileURL } from "node:url";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
	if (typeof args[0] === "number") args.splice(1, typeof args[1] === "string" ? 1 : 0, "127.0.0.1");
	return listen.apply(this, args);
};
console.clear = () => undefined;
process.argv.push(`--port=${process.env.PORTKEY_PORT}`, "--headless");
process.on("SIGTERM", () => process.exit(0));
await import(pathToFileURL(process.env.PORTKEY_ENTRY).href);
