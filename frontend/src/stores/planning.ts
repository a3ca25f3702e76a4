// planning: the current organization's states, entities, relations, cycles and plans; switching organization
// empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { cyclesApi, entitiesApi, plansApi, relationsApi, statesApi } from "@/api/planning.api";

export const usePlanningStore = defineStore("planning", () => {
	const entities = useCrud(entitiesApi);
	const states = useCrud(statesApi);
	const relations = useCrud(relationsApi);
	const cycles = useCrud(cyclesApi);
	const plans = useCrud(plansApi);
	async function load() {
		await Promise.all([states.load(), entities.load(), relations.load(), cycles.load(), plans.load()]);
	}
	return { entities, states, relations, cycles, plans, load };
});
