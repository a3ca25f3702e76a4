// Roles come from the backend's single definition; what each role holds comes from the server (the organizations
// list carries each membership's permissions), so the UI hides exactly what the API refuses.
export { ROLES, roleRank, PUBLIC, AUTHENTICATED } from "../../../lib/permissions";
export type { Role } from "../../../lib/permissions";
