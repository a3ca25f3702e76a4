// Who may read and write which category, computed inside SQL so every query that lists or searches articles joins
// with it (nothing is filtered after a LIMIT). A category with grants is restricted to them; one without inherits
// the nearest restricted ancestor's; a tree with none is open to the organization. knowledge:manage sees all.
import type { Context } from "moleculer";
import type { Queryable } from "../../lib/db";
import { authOf, holds } from "../../lib/authz";
import { forbidden, invalid, notFound } from "../../lib/errors";
import { isUuid } from "../../lib/db/tenant";
import { ROLES, roleRank, type Role } from "../../lib/permissions";

// The caller as the access query sees it. A service principal (a job) has no user and no role: it reads the open
// categories only.
export interface Reader {
	organizationId: string;
	userId: string | null;
	// The caller's role and every role below it: a grant to "member" holds for members, admins and owners.
	roles: Role[];
	all: boolean;
	// Holds knowledge:write: without it no grant lets one write.
	writer: boolean;
}

export function readerOf(ctx: Context): Reader {
	const auth = authOf(ctx);
	if (!auth?.organizationId) throw forbidden("no organization selected");
	const role = auth.kind === "service" ? undefined : auth.role;
	return {
		organizationId: auth.organizationId,
		userId: auth.kind === "service" ? null : (auth.userId ?? null),
		roles: role ? ROLES.filter(r => roleRank(r) <= roleRank(role)) : [],
		all: auth.kind !== "service" && holds(auth, "knowledge:manage"),
		writer: holds(auth, "knowledge:write")
	};
}

// The parameters of ACCESS, always $1..$4; a query using it numbers its own from $5.
export const accessParams = (r: Reader) => [r.organizationId, r.userId, r.roles, r.all];

// `kb_access (id, parent_id, can_read, can_write)`: every category of the organization. kb_tree walks down from the
// roots carrying `gov`, the nearest category (itself included) that has grants.
export const ACCESS = `
WITH RECURSIVE kb_tree AS (
	SELECT c.id, c.parent_id,
		CASE WHEN EXISTS (SELECT 1 FROM kb_category_grants g WHERE g.category_id = c.id) THEN c.id END AS gov
	FROM kb_categories c WHERE c.organization_id = $1::uuid AND c.parent_id IS NULL
	UNION ALL
	SELECT c.id, c.parent_id,
		CASE WHEN EXISTS (SELECT 1 FROM kb_category_grants g WHERE g.category_id = c.id) THEN c.id ELSE t.gov END
	FROM kb_categories c JOIN kb_tree t ON c.parent_id = t.id
),
kb_mine AS (
	SELECT g.category_id, bool_or(g.access = 'write') AS write
	FROM kb_category_grants g
	WHERE g.organization_id = $1::uuid AND (g.role = ANY($3::text[]) OR g.team_id IN (
		SELECT tm.team_id FROM team_members tm WHERE tm.user_id = $2::uuid AND tm.organization_id = $1::uuid))
	GROUP BY g.category_id
),
kb_access AS (
	SELECT t.id, t.parent_id,
		($4::boolean OR t.gov IS NULL OR m.category_id IS NOT NULL) AS can_read,
		($4::boolean OR t.gov IS NULL OR COALESCE(m.write, false)) AS can_write
	FROM kb_tree t LEFT JOIN kb_mine m ON m.category_id = t.gov
)`;

export type Access = "read" | "write";

// The ids of the categories the reader may read (or write), optionally only `within` a category's subtree.
export async function categoriesFor(db: Queryable, r: Reader, access: Access, within?: string): Promise<string[]> {
	if (access === "write" && !r.writer) return [];
	const column = access === "read" ? "can_read" : "can_write";
	const sql = within
		? `${ACCESS}, kb_sub AS (
				SELECT id FROM kb_categories WHERE id = $5::uuid AND organization_id = $1::uuid
				UNION ALL SELECT c.id FROM kb_categories c JOIN kb_sub s ON c.parent_id = s.id)
			SELECT a.id FROM kb_access a JOIN kb_sub s ON s.id = a.id WHERE a.${column}`
		: `${ACCESS} SELECT id FROM kb_access WHERE ${column}`;
	const { rows } = await db.query<{ id: string }>(sql, [...accessParams(r), ...(within ? [within] : [])]);
	return rows.map(row => row.id);
}

// What the reader may do with one category; null when it does not exist in the organization.
export async function accessTo(
	db: Queryable,
	r: Reader,
	categoryId: string
): Promise<{ read: boolean; write: boolean } | null> {
	const { rows } = await db.query<{ can_read: boolean; can_write: boolean }>(
		`${ACCESS} SELECT can_read, can_write FROM kb_access WHERE id = $5::uuid`,
		[...accessParams(r), categoryId]
	);
	return rows[0] ? { read: rows[0].can_read, write: r.writer && rows[0].can_write } : null;
}

// The category as the caller sees it; 404 when it does not exist for them, 403 when `write` is asked and refused.
export async function visibleCategory(q: Queryable, r: Reader, id: string, write = false, field?: string) {
	const access = isUuid(id) ? await accessTo(q, r, id) : null;
	if (!access?.read) throw field ? invalid(field, "no such category") : notFound("category");
	if (write && !access.write) throw forbidden("you may not write in this category");
	return access;
}
