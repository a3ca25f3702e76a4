// Roles and what they grant come from the backend's single definition, so the UI hides exactly what the API refuses.
export { ROLES, grants, roleRank, PUBLIC, AUTHENTICATED } from "../../../lib/permissions";
export type { Role } from "../../../lib/permissions";
