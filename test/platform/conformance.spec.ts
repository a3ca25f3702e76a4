// The conformance suite over every module in services/: generated from manifests and actions (test/helpers/
// conformance.ts). Nothing here names a module; a module added to services/ is covered by this file as it is.
import path from "path";
import { describeWith } from "../helpers/infra";
import { Cluster, describeConformance, modulesUnderTest, startCluster, waitForRoutes } from "../helpers/conformance";
import { SERVICES_DIR } from "../../lib/module";

jest.setTimeout(120_000);

const modules = modulesUnderTest(SERVICES_DIR);

describeWith(["postgres"])("conformance of every module (in-process gateway, real PostgreSQL)", () => {
	let c: (Cluster & { stop(): Promise<void> }) | undefined;

	beforeAll(async () => {
		const files = modules.flatMap(m =>
			m.services.map(s => path.relative(path.resolve(SERVICES_DIR, ".."), s.file))
		);
		c = await startCluster({ NODE_ID: "conformance", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }, files);
		await waitForRoutes(c, modules);
	});

	afterAll(async () => {
		await c?.stop();
	});

	describeConformance(modules, () => c!);
});
