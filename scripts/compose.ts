// docker-compose.yml's per-module containers, derived from the manifests: `npm run compose` rewrites the marked
// section with one block per module, in dependency order, with what its manifest's `container` adds (variables
// only it holds, published ports). `npm run compose -- --check` fails when the file is out of date.
import fs from "fs";
import path from "path";
import { loadManifests, ModuleManifest, SERVICES_DIR } from "../lib/module";

export const COMPOSE_FILE = path.resolve(__dirname, "../docker-compose.yml");
const BEGIN = "  # >>> modules derived from their manifests by `npm run compose`; do not edit by hand";
const END = "  # <<< derived modules";

function block(m: ModuleManifest): string {
	const deps = (m.dependsOn ?? []).map(d => `\n      ${d}: { condition: service_healthy }`).join("");
	const env = Object.entries(m.container?.environment ?? {}).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`);
	const ports = m.container?.ports?.length
		? ["    ports:", ...m.container.ports.map(p => `      - ${JSON.stringify(p)}`)]
		: [];
	return [
		`  # --- ${m.name}: ${m.description}`,
		`  ${m.name}:`,
		"    <<: *service",
		"    environment:",
		"      <<: *service-env",
		`      SERVICES: ${m.name}`,
		...env,
		...ports,
		"    depends_on:",
		`      <<: *infra${deps}`,
		""
	].join("\n");
}

// Modules after the ones they depend on (the seed's start-up order), otherwise by name.
function inStartOrder(manifests: ModuleManifest[]): ModuleManifest[] {
	const byName = new Map(manifests.map(m => [m.name, m]));
	const out: ModuleManifest[] = [];
	const visit = (m: ModuleManifest) => {
		if (out.includes(m)) return;
		for (const d of m.dependsOn ?? []) if (byName.has(d)) visit(byName.get(d)!);
		out.push(m);
	};
	[...manifests].sort((a, b) => a.name.localeCompare(b.name)).forEach(visit);
	return out;
}

// The compose text with its derived section rebuilt from `manifests`.
export function renderCompose(text: string, manifests: ModuleManifest[]): string {
	const start = text.indexOf(BEGIN);
	const end = text.indexOf(END);
	if (start < 0 || end < start)
		throw new Error(`docker-compose.yml: the markers "${BEGIN.trim()}" … "${END.trim()}" are missing`);
	const blocks = inStartOrder(manifests).map(block);
	return `${text.slice(0, start)}${BEGIN}\n${blocks.join("\n")}${text.slice(end)}`;
}

if (require.main === module) {
	const text = fs.readFileSync(COMPOSE_FILE, "utf8");
	const wanted = renderCompose(text, loadManifests(process.env.SERVICES_DIR ?? SERVICES_DIR));
	if (process.argv.includes("--check")) {
		if (wanted !== text) {
			console.error("docker-compose.yml is out of date with the manifests: run npm run compose");
			process.exit(1);
		}
	} else if (wanted !== text) {
		fs.writeFileSync(COMPOSE_FILE, wanted);
		console.log("docker-compose.yml: derived modules rewritten");
	}
}
