// The knowledge tests' world: a broker with auth and knowledge on a fresh database (PGlite with TEST_DB=pglite), organizations, and principals
// made directly in SQL (users, memberships, teams) so a test can build many of them quickly.
import crypto from "crypto";
import { createTestBroker, as } from "../helpers/broker";
import { createTestDatabase } from "../helpers/infra";
import { getDb } from "../../lib/db";
import { waitUntil } from "../helpers/wait";
import { permissionsFor } from "../../lib/authz";
import type { AuthInfo, Role } from "../../lib/permissions";

export const KNOWLEDGE_FILES = [
	"services/auth/auth.service.ts",
	"services/knowledge/knowledge.service.ts",
	"services/knowledge/categories.service.ts",
	"services/knowledge/articles.service.ts"
];

// The embeddings module beside it: search becomes hybrid, the indexer feeds the "knowledge" collection.
export const WITH_EMBEDDINGS = [
	...KNOWLEDGE_FILES,
	"services/embeddings/embeddings.service.ts",
	"services/embeddings/models.service.ts",
	"services/embeddings/collections.service.ts",
	"services/embeddings/documents.service.ts",
	"services/embeddings/jobs.service.ts"
];

export async function knowledgeWorld(env: Record<string, string> = {}, files = KNOWLEDGE_FILES) {
	const db = await createTestDatabase();
	const t = await createTestBroker({ ...db.env, ...env }, files);
	// The broker's own database (PostgreSQL, or PGlite with TEST_DB=pglite, whose one connection is the process's).
	const sql = { query: async <T = any>(text: string, params?: unknown[]) => (await getDb()).query<T>(text, params) };

	async function organization(name = "org") {
		const { rows } = await sql.query<{ id: string }>(
			"INSERT INTO organizations (name, slug) VALUES ($1, $2) RETURNING id",
			[name, `${name}-${crypto.randomBytes(4).toString("hex")}`]
		);
		return rows[0].id;
	}

	// A user with `role` in the organization (and in the given teams).
	async function principal(organizationId: string, role: Role, teams: string[] = []): Promise<AuthInfo> {
		const email = `${crypto.randomBytes(6).toString("hex")}@example.com`;
		const { rows } = await sql.query<{ id: string }>(
			"INSERT INTO users (email, name, password_hash) VALUES ($1, $1, 'x') RETURNING id",
			[email]
		);
		const userId = rows[0].id;
		await sql.query("INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)", [
			organizationId,
			userId,
			role
		]);
		for (const team of teams)
			await sql.query("INSERT INTO team_members (team_id, user_id, organization_id) VALUES ($1, $2, $3)", [
				team,
				userId,
				organizationId
			]);
		return { kind: "session", userId, organizationId, role, permissions: permissionsFor(role) };
	}

	async function team(organizationId: string, name: string) {
		const { rows } = await sql.query<{ id: string }>(
			"INSERT INTO teams (organization_id, name) VALUES ($1, $2) RETURNING id",
			[organizationId, name]
		);
		return rows[0].id;
	}

	const call = <T = any>(action: string, params: object, auth: AuthInfo) =>
		t.broker.call<T, object>(action, params, as(auth));

	// Waits until the indexer has brought the article's indexed revision to `revision` (null: out of the index).
	const indexed = (articleId: string, revision: number | null, timeoutMs = 10_000) =>
		waitUntil(
			`article ${articleId} indexed at ${revision}`,
			async () =>
				(
					await sql.query<{ revision: number }>(
						"SELECT revision FROM kb_search_index WHERE article_id = $1",
						[articleId]
					)
				).rows[0]?.revision ?? null,
			r => r === revision,
			timeoutMs,
			50
		);

	// Waits until the organization's "knowledge" collection holds `n` documents.
	const embedded = (organizationId: string, n: number) =>
		waitUntil(
			`${n} documents in the knowledge collection`,
			async () =>
				(
					await sql.query<{ n: number }>(
						`SELECT count(*)::int AS n FROM emb_documents d JOIN emb_collections c ON c.id = d.collection_id
						 WHERE c.organization_id = $1 AND c.name = 'knowledge'`,
						[organizationId]
					)
				).rows[0].n,
			count => count === n
		);

	return {
		db,
		embedded,
		t,
		sql,
		organization,
		principal,
		team,
		call,
		indexed,
		async stop() {
			await t.stop();
			await db.drop();
		}
	};
}
