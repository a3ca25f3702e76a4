// execution module: /api/execution/runs — runs of approved plans, their steps, approvals and rollback, in the
// organization chosen in the switcher. Types come from the generated schema.d.ts (npm run api-types).
import { api, type Schema } from "@/lib/api";

export type ExecutionRun = Schema<"ExecutionRun">;
export type ExecutionStep = Schema<"ExecutionStep">;
export type ExecutionRunDetail = Schema<"ExecutionRunDetail">;

const path = (id: string, action = "") => `/execution/runs/${encodeURIComponent(id)}${action}`;

export const runsApi = {
	entity: "execution-runs",
	list: (planId?: string) => api.get<ExecutionRun[]>("/execution/runs", { planId }),
	get: (id: string) => api.get<ExecutionRunDetail>(path(id)),
	start: (planId: string) => api.post<ExecutionRun>("/execution/runs", { planId }),
	approve: (id: string, position: number) => api.post<ExecutionRunDetail>(path(id, "/approve"), { position }),
	rollback: (id: string) => api.post<ExecutionRun>(path(id, "/rollback")),
	cancel: (id: string) => api.post<ExecutionRun>(path(id, "/cancel"))
};
