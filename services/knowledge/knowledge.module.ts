// Manifest of the knowledge module (lib/module.ts): Markdown articles in nested categories with per-category grants,
// revisions, and search that never shows what the caller may not read.
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "knowledge",
	description: "Knowledge base: Markdown articles in nested categories, revisions, permission-safe search",
	tablePrefix: "kb_",
	dependsOn: ["auth", "embeddings"],
	permissions: {
		"knowledge:read": {
			description: "Read and search the articles of the categories one may read",
			role: "viewer"
		},
		"knowledge:write": {
			description: "Write, publish and restore articles and create categories where one may write",
			role: "member"
		},
		"knowledge:manage": {
			description: "See and change every category and article, grant categories to teams and roles",
			role: "admin"
		}
	},
	// The indexer acts for an organization without a user: it feeds the organization's "knowledge" collection.
	servicePermissions: ["embeddings:write"],
	container: {
		environment: {
			SERVICE_CREDENTIALS: "knowledge:${KNOWLEDGE_SERVICE_CREDENTIAL:?set KNOWLEDGE_SERVICE_CREDENTIAL}"
		}
	},
	publishes: ["knowledge.events"],
	// Its own channel: published revisions reach the search index (and the embeddings) through it.
	consumes: [{ channel: "knowledge.events", group: "knowledge" }]
});
