// docker-compose.yml's per-module containers are derived from the manifests: the committed file is what
// `npm run compose` makes of them, so a module added without running it fails here, naming the command.
import fs from "fs";
import { COMPOSE_FILE, renderCompose } from "../../scripts/compose";
import { loadManifests, SERVICES_DIR } from "../../lib/module";

test("docker-compose.yml matches the manifests (npm run compose)", () => {
	const text = fs.readFileSync(COMPOSE_FILE, "utf8");
	expect(renderCompose(text, loadManifests(SERVICES_DIR))).toBe(text);
});

test("a module without a hand-written block gets a derived one, after the modules it depends on", () => {
	const text = fs.readFileSync(COMPOSE_FILE, "utf8");
	const extra = { name: "calendar", description: "Events", publishes: [], consumes: [], dependsOn: ["auth"] };
	const derived = renderCompose(text, [...loadManifests(SERVICES_DIR), extra]);
	expect(derived).toContain(
		"  calendar:\n    <<: *service\n    environment:\n      <<: *service-env\n      SERVICES: calendar\n" +
			"    depends_on:\n      <<: *infra\n      auth: { condition: service_healthy }\n"
	);
	expect(derived.match(/^ {2}secrets:/gm)).toHaveLength(1);
});

test("what only one container may hold is in its block alone: the master key, a service credential, the port", () => {
	const text = fs.readFileSync(COMPOSE_FILE, "utf8");
	const blockOf = (name: string) =>
		text.slice(text.indexOf(`\n  ${name}:\n`), text.indexOf("\n\n", text.indexOf(`\n  ${name}:\n`)));
	expect(blockOf("secrets")).toContain("MASTER_KEY:");
	expect(blockOf("ai")).toContain('SERVICE_CREDENTIALS: "ai:${AI_SERVICE_CREDENTIAL');
	expect(blockOf("gateway")).toContain('- "${PORT:-3000}:3000"');
	expect(text.match(/MASTER_KEY: "/g)).toHaveLength(1);
	expect(text.match(/\$\{PORT:-3000\}:3000/g)).toHaveLength(1);
});
