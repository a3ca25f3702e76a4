// `npm run service-credential -- <service> [...]`: prints `<service>:<credential>` for SERVICE_CREDENTIALS, from
// the operator's SERVICE_IDENTITY_KEY (lib/service-identity.ts). Run it where that key is kept, never on the node.
import { deriveCredential } from "./service-identity";

const root = process.env.SERVICE_IDENTITY_KEY;
const services = process.argv.slice(2);
if (!root || root.length < 32) {
	console.error("SERVICE_IDENTITY_KEY: set it (32+ characters) to print the credentials it issues");
	process.exit(1);
}
if (!services.length) {
	console.error("usage: npm run service-credential -- <service> [<service> ...]");
	process.exit(1);
}
try {
	console.log(services.map(s => `${s}:${deriveCredential(root, s)}`).join(","));
} catch (err) {
	console.error((err as Error).message);
	process.exit(1);
}
