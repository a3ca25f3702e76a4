// knowledge-categories: the nested categories articles live in, and the grants that restrict a category (and the
// subcategories without grants of their own) to teams and roles. A category the caller may not read does not exist
// for them (404); one they may read but not write is a 403.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb as db, type Queryable } from "../../lib/db";
import { isUuid } from "../../lib/db/tenant";
import { conflict, fromDbError, invalid, notFound } from "../../lib/errors";
import { checkTenantReferences } from "../../mixins/db.mixin";
import { listOf } from "../../lib/response";
import { ACCESS, accessParams, readerOf, visibleCategory, type Reader } from "./access";
import { liveChange } from "./store";
import * as R from "./knowledge.responses";

type CategoryInput = { name?: string; description?: string; parent_id?: string | null; position?: number };
type GrantInput = { team_id?: string; role?: string; access: "read" | "write" };

const name = { type: "string", min: 1, max: 200, trim: true, label: "Name" };
const description = { type: "string", max: 2000, optional: true, label: "Description" };
const parentId = { type: "uuid", optional: true, nullable: true, label: "Parent category" };
const position = { type: "number", integer: true, min: 0, max: 1_000_000, optional: true, label: "Position" };

const SELECT = `${ACCESS}
	SELECT c.id, c.parent_id, c.name, c.description, c.position, c.created_at, c.updated_at, a.can_write,
		EXISTS (SELECT 1 FROM kb_category_grants g WHERE g.category_id = c.id) AS restricted,
		(SELECT count(*)::int FROM kb_articles x WHERE x.category_id = c.id) AS article_count
	FROM kb_categories c JOIN kb_access a ON a.id = c.id
	WHERE a.can_read`;

const KnowledgeCategoriesService: ServiceSchema = {
	name: "knowledge-categories",
	settings: { rest: "/knowledge/categories" },

	actions: {
		// Every category the caller may read, by position then name (the UI builds the tree from parent_id).
		list: {
			rest: "GET /",
			permission: "knowledge:read",
			response: listOf(R.KbCategory),
			async handler(this: Service, ctx: Context) {
				const r = readerOf(ctx);
				const { rows } = await (await db()).query(`${SELECT} ORDER BY c.position, c.name`, accessParams(r));
				return rows.map(row => ({ ...row, can_write: r.writer && row.can_write }));
			}
		},

		get: {
			rest: "GET /:id",
			permission: "knowledge:read",
			params: { id: "string" },
			response: R.KbCategory,
			async handler(this: Service, ctx: Context<{ id: string }>) {
				return one(await db(), readerOf(ctx), ctx.params.id);
			}
		},

		// A root category, or a subcategory of one the caller may write in.
		create: {
			rest: "POST /",
			permission: "knowledge:write",
			params: { $$strict: true, name, description, parent_id: parentId, position },
			response: R.KbCategory,
			async handler(this: Service, ctx: Context<CategoryInput & { name: string }>) {
				const r = readerOf(ctx);
				const { name, description = "", parent_id = null, position = 0 } = ctx.params;
				const q = await db();
				if (parent_id) await visibleCategory(q, r, parent_id, true, "parent_id");
				const { rows } = await q
					.query<{ id: string }>(
						`INSERT INTO kb_categories (organization_id, parent_id, name, description, position)
						 VALUES ($1, $2, $3, $4, $5) RETURNING id`,
						[r.organizationId, parent_id, name, description, position]
					)
					.catch(err => {
						throw siblingConflict(err);
					});
				liveChange(this.broker, r.organizationId, "knowledge-categories", rows[0].id, "created");
				return one(q, r, rows[0].id);
			}
		},

		// Renames, describes, reorders or moves a category (into one the caller may write in, never below itself).
		update: {
			rest: "PATCH /:id",
			permission: "knowledge:write",
			params: {
				$$strict: true,
				id: "string",
				name: { ...name, optional: true },
				description,
				parent_id: parentId,
				position
			},
			response: R.KbCategory,
			async handler(this: Service, ctx: Context<CategoryInput & { id: string }>) {
				const r = readerOf(ctx);
				const { id, parent_id, ...rest } = ctx.params;
				const q = await db();
				await visibleCategory(q, r, id, true);
				if (parent_id) {
					await visibleCategory(q, r, parent_id, true, "parent_id");
					const { rows } = await q.query(
						`WITH RECURSIVE sub AS (SELECT id FROM kb_categories WHERE id = $1
						 UNION ALL SELECT c.id FROM kb_categories c JOIN sub s ON c.parent_id = s.id)
						 SELECT 1 FROM sub WHERE id = $2`,
						[id, parent_id]
					);
					if (rows.length) throw invalid("parent_id", "cannot be the category itself or one inside it");
				}
				await q
					.query(
						`UPDATE kb_categories SET name = COALESCE($3, name), description = COALESCE($4, description),
							position = COALESCE($5, position),
							parent_id = CASE WHEN $6 THEN $7::uuid ELSE parent_id END, updated_at = now()
						 WHERE id = $1 AND organization_id = $2`,
						[
							id,
							r.organizationId,
							rest.name ?? null,
							rest.description ?? null,
							rest.position ?? null,
							parent_id !== undefined,
							parent_id ?? null
						]
					)
					.catch(err => {
						throw siblingConflict(err);
					});
				liveChange(this.broker, r.organizationId, "knowledge-categories", id, "updated");
				return one(q, r, id);
			}
		},

		// Removes an empty category with its subcategories; one holding articles (or whose subcategories do) stays.
		remove: {
			rest: "DELETE /:id",
			permission: "knowledge:manage",
			params: { id: "string" },
			response: R.KbCategory,
			async handler(this: Service, ctx: Context<{ id: string }>) {
				const r = readerOf(ctx);
				const q = await db();
				const before = await one(q, r, ctx.params.id);
				const { rows } = await q.query<{ n: number }>(
					`WITH RECURSIVE sub AS (SELECT id FROM kb_categories WHERE id = $1
					 UNION ALL SELECT c.id FROM kb_categories c JOIN sub s ON c.parent_id = s.id)
					 SELECT count(*)::int AS n FROM kb_articles WHERE category_id IN (SELECT id FROM sub)`,
					[before.id]
				);
				if (rows[0].n > 0)
					throw conflict(`the category holds ${rows[0].n} article(s): move or remove them first`);
				await q.query("DELETE FROM kb_categories WHERE id = $1 AND organization_id = $2", [
					before.id,
					r.organizationId
				]);
				liveChange(this.broker, r.organizationId, "knowledge-categories", before.id, "removed");
				return before;
			}
		},

		grants: {
			rest: "GET /:id/grants",
			permission: "knowledge:read",
			params: { id: "string" },
			response: listOf(R.KbGrant),
			async handler(this: Service, ctx: Context<{ id: string }>) {
				const q = await db();
				await visibleCategory(q, readerOf(ctx), ctx.params.id);
				return grantsOf(q, ctx.params.id);
			}
		},

		// Replaces the category's grants. None: it inherits its parent's again (or is open to the organization).
		setGrants: {
			rest: "PUT /:id/grants",
			permission: "knowledge:manage",
			params: {
				$$strict: true,
				id: "string",
				grants: {
					type: "array",
					max: 100,
					label: "Grants",
					items: {
						type: "object",
						strict: true,
						props: {
							team_id: { type: "uuid", optional: true, label: "Team" },
							role: { type: "enum", values: ["owner", "admin", "member", "viewer"], optional: true },
							access: { type: "enum", values: ["read", "write"], label: "Access" }
						}
					}
				}
			},
			response: listOf(R.KbGrant),
			async handler(this: Service, ctx: Context<{ id: string; grants: GrantInput[] }>) {
				const r = readerOf(ctx);
				const { id, grants } = ctx.params;
				grants.forEach((g, i) => {
					if (!g.team_id === !g.role) throw invalid(`grants[${i}]`, "names either a team or a role");
				});
				const q = await db();
				await visibleCategory(q, r, id);
				const teams = grants.map(g => g.team_id).filter((t): t is string => !!t);
				await checkTenantReferences(
					q,
					r.organizationId,
					{ team_id: { table: "teams", entity: "team" } },
					{
						team_id: teams
					}
				);
				await q
					.transaction(async tx => {
						await tx.query("DELETE FROM kb_category_grants WHERE category_id = $1", [id]);
						for (const g of grants)
							await tx.query(
								`INSERT INTO kb_category_grants (organization_id, category_id, team_id, role, access)
								 VALUES ($1, $2, $3, $4, $5)`,
								[r.organizationId, id, g.team_id ?? null, g.role ?? null, g.access]
							);
					})
					.catch(err => {
						throw err?.code === "23505"
							? invalid("grants", "names the same team or role twice")
							: fromDbError(err, "grant");
					});
				// Who may read what changed: pages read the tree and the articles again.
				liveChange(this.broker, r.organizationId, "knowledge-categories", id, "updated");
				return grantsOf(q, id);
			}
		}
	}
};

async function one(q: Queryable, r: Reader, id: string) {
	if (!isUuid(id)) throw notFound("category");
	const { rows } = await q.query(`${SELECT} AND c.id = $5`, [...accessParams(r), id]);
	if (!rows[0]) throw notFound("category");
	return { ...rows[0], can_write: r.writer && rows[0].can_write } as { id: string };
}

async function grantsOf(q: Queryable, categoryId: string) {
	const { rows } = await q.query(
		`SELECT g.id, g.team_id, t.name AS team_name, g.role, g.access FROM kb_category_grants g
		 LEFT JOIN teams t ON t.id = g.team_id WHERE g.category_id = $1 ORDER BY g.role NULLS LAST, t.name`,
		[categoryId]
	);
	return rows;
}

function siblingConflict(err: any) {
	return err?.code === "23505" ? conflict("a category with this name already exists here", "name") : fromDbError(err);
}

export default KnowledgeCategoriesService;
