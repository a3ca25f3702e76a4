import { probeInfra } from "./infra";

export default async function globalSetup() {
	process.env.INFRA_AVAILABLE = await probeInfra();
}
