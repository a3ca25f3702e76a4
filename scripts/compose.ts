// docker-compose.yml's per-module containers, derived from the manifests: `npm run compose` rewrites the marked
// section with one block for every module that has no hand-written block (those carry settings only they need:
// the master key, a service credential, a port). `npm run compose -- --check` fails when the file is out of date.
import fs from "fs";
import path from "path";
import { loadManifests, ModuleManifest, SERVICES_DIR } from "../lib/module";

export const COMPOSE_FILE = path.resolve(__dirname, "../docker-compose.yml");
const BEGIN = "  # >>> modules derived from their manifests by `npm run compose`; do not edit by hand";
const END = "  # <<< derived modules";

function block(m: ModuleManifest): string {
	const deps = (m.dependsOn ?? []).map(d => `\n      ${d}: { condition: service_healthy }`).join("");
	return [
		`  # --- ${m.name}: ${m.description}`,
		`  ${m.name}:`,
		"    <<: *service",
		"    environment:",
		"      <<: *service-env",
		`      SERVICES: ${m.name}`,
		"    depends_on:",
		`      <<: *infra${deps}`,
		""
	].join("\n");
}

// The compose text with its derived section rebuilt from `manifests`.
export function renderCompose(text: string, manifests: ModuleManifest[]): string {
	const start = text.indexOf(BEGIN);
	const end = text.indexOf(END);
	if (start < 0 || end < start)
		throw new Error(`docker-compose.yml: the markers "${BEGIN.trim()}" … "${END.trim()}" are missing`);
	const outside = text.slice(0, start) + text.slice(end);
	const handWritten = (name: string) => new RegExp(`^  ${name}:`, "m").test(outside);
	const blocks = manifests.filter(m => !handWritten(m.name)).map(block);
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
