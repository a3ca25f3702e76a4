// The prompts tables. A scope is whose templates a statement touches: an organization (its own rows; shared ones
// are read-only to it) or, with `organizationId: null`, the shared templates the platform operator maintains.
// Statements over an organization's rows go through the tenant helper (lib/db/tenant.ts); rows keyed by a template
// id (versions, labels, moves) are read only after that template was found in the scope.
import type { Queryable } from "../../lib/db";
import { TenantSql } from "../../lib/db/tenant";
import { isUuid } from "../../lib/db/tenant";
import { forbidden, invalid, notFound } from "../../lib/errors";
import type { AuthInfo } from "../../lib/permissions";
import type { ChatMessage } from "./render";
import type { VariableDef } from "./variables";

export interface Scope {
	organizationId: string | null; // null: the shared templates
	auth?: AuthInfo;
}

export interface TemplateRow {
	id: string;
	organization_id: string | null;
	name: string;
	description: string;
	tags: string[];
	overrides_template_id: string | null;
	created_by: string | null;
	created_at: Date;
	updated_at: Date;
}

export interface VersionRow {
	id: string;
	template_id: string;
	number: number;
	messages: ChatMessage[];
	variables: VariableDef[];
	model_settings: Record<string, unknown>;
	note: string;
	created_by: string | null;
	created_at: Date;
}

export interface LabelRow {
	template_id: string;
	name: string;
	version_id: string;
	protected: boolean;
	updated_by: string | null;
	updated_at: Date;
}

export const PROTECTED_BY_DEFAULT = ["production"];

export class Store {
	constructor(
		readonly db: Queryable,
		readonly scope: Scope
	) {}

	get shared() {
		return this.scope.organizationId === null;
	}

	get userId(): string | null {
		return this.scope.auth?.userId ?? null;
	}

	// Statements that name `$org` for an organization; for the shared scope `$org` is no organization at all.
	async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
		if (this.scope.organizationId)
			return new TenantSql(this.scope.organizationId, this.scope.auth, this.db).rows<T>(sql, params);
		const n = params.length + 1;
		return (await this.db.query<T>(sql.replace(/\$org\b/g, `$${n}`), [...params, null])).rows;
	}

	// A template the scope sees by id: its own, or a shared one (organization_id IS NULL matches both scopes).
	async visible(id: unknown): Promise<TemplateRow> {
		if (!isUuid(id)) throw notFound("prompt template");
		const [row] = await this.rows<TemplateRow>(
			"SELECT * FROM prompts_templates WHERE id = $1 AND (organization_id = $org OR organization_id IS NULL)",
			[id]
		);
		if (!row) throw notFound("prompt template");
		return row;
	}

	// A template the scope may change (locked for the transaction): an organization changes only its own; a shared
	// one is the operator's (an organization overrides it instead).
	async own(id: unknown): Promise<TemplateRow> {
		const row = await this.visible(id);
		if (row.organization_id !== this.scope.organizationId)
			throw forbidden("a shared prompt template is changed only by the platform operator: override it instead");
		await this.db.query("SELECT id FROM prompts_templates WHERE id = $1 FOR UPDATE", [row.id]);
		return row;
	}

	// The template called `name` as the scope sees it: its own (an override included) before a shared one.
	async byName(name: string): Promise<TemplateRow | undefined> {
		const [row] = await this.rows<TemplateRow>(
			`SELECT * FROM prompts_templates WHERE name = $1 AND (organization_id = $org OR organization_id IS NULL)
			 ORDER BY organization_id NULLS LAST LIMIT 1`,
			[name]
		);
		return row;
	}

	// A page of the templates the scope sees: its own and the shared ones it has not overridden (its own of the same
	// name, an override or one made before the shared one, is what it renders), by name, each with
	// its labels (name -> version number) and latest version number.
	async list(q: { search?: string; tag?: string; page: number; pageSize: number }) {
		const params: unknown[] = [];
		let filter = "";
		if (q.search) {
			params.push(`%${q.search.replace(/[\\%_]/g, c => "\\" + c)}%`);
			filter += ` AND (t.name ILIKE $${params.length} OR t.description ILIKE $${params.length})`;
		}
		if (q.tag) {
			params.push(q.tag);
			filter += ` AND $${params.length} = ANY (t.tags)`;
		}
		const visible = `FROM prompts_templates t
			 WHERE (t.organization_id = $org OR (t.organization_id IS NULL AND NOT EXISTS (
				SELECT 1 FROM prompts_templates o WHERE o.organization_id = $org AND o.name = t.name)))${filter}`;
		const [{ total }] = await this.rows<{ total: number }>(`SELECT count(*)::int AS total ${visible}`, params);
		const rows = await this.rows<TemplateRow & { labels: Record<string, number>; latest_version: number }>(
			`SELECT t.*,
				COALESCE((SELECT jsonb_object_agg(l.name, v.number) FROM prompts_labels l JOIN prompts_versions v ON v.id = l.version_id
					WHERE l.template_id = t.id), '{}') AS labels,
				(SELECT max(number) FROM prompts_versions WHERE template_id = t.id) AS latest_version
			 ${visible} ORDER BY t.name LIMIT ${q.pageSize} OFFSET ${(q.page - 1) * q.pageSize}`,
			params
		);
		return { rows, total, page: q.page, pageSize: q.pageSize, totalPages: Math.ceil(total / q.pageSize) };
	}

	async versions(templateId: string): Promise<(VersionRow & { labels: string[] })[]> {
		const { rows } = await this.db.query(
			`SELECT v.*, COALESCE(array_agg(l.name ORDER BY l.name) FILTER (WHERE l.name IS NOT NULL), '{}') AS labels
			 FROM prompts_versions v LEFT JOIN prompts_labels l ON l.version_id = v.id
			 WHERE v.template_id = $1 GROUP BY v.id ORDER BY v.number DESC`,
			[templateId]
		);
		return rows;
	}

	async version(templateId: string, number: number, field = "version"): Promise<VersionRow> {
		const { rows } = await this.db.query<VersionRow>(
			"SELECT * FROM prompts_versions WHERE template_id = $1 AND number = $2",
			[templateId, number]
		);
		if (!rows[0]) throw invalid(field, `this template has no version ${number}`);
		return rows[0];
	}

	async labelled(templateId: string, label: string): Promise<VersionRow | undefined> {
		const { rows } = await this.db.query<VersionRow>(
			`SELECT v.* FROM prompts_labels l JOIN prompts_versions v ON v.id = l.version_id
			 WHERE l.template_id = $1 AND l.name = $2`,
			[templateId, label]
		);
		return rows[0];
	}

	async labels(templateId: string): Promise<(LabelRow & { version: number })[]> {
		const { rows } = await this.db.query(
			`SELECT l.*, v.number AS version FROM prompts_labels l JOIN prompts_versions v ON v.id = l.version_id
			 WHERE l.template_id = $1 ORDER BY l.name`,
			[templateId]
		);
		return rows;
	}

	async insertTemplate(t: {
		name: string;
		description?: string;
		tags?: string[];
		overrides_template_id?: string | null;
	}): Promise<TemplateRow> {
		const [row] = await this.rows<TemplateRow>(
			`INSERT INTO prompts_templates (organization_id, name, description, tags, overrides_template_id, created_by)
			 VALUES ($org, $1, $2, $3, $4, $5) RETURNING *`,
			[t.name, t.description ?? "", t.tags ?? [], t.overrides_template_id ?? null, this.userId]
		);
		return row;
	}

	async insertVersion(
		templateId: string,
		v: { messages: ChatMessage[]; variables?: VariableDef[]; model_settings?: object; note?: string }
	): Promise<VersionRow> {
		const { rows } = await this.db.query<VersionRow>(
			`INSERT INTO prompts_versions (template_id, number, messages, variables, model_settings, note, created_by)
			 SELECT $1, COALESCE(max(number), 0) + 1, $2, $3, $4, $5, $6 FROM prompts_versions WHERE template_id = $1
			 RETURNING *`,
			[
				templateId,
				JSON.stringify(v.messages),
				JSON.stringify(v.variables ?? []),
				JSON.stringify(v.model_settings ?? {}),
				v.note ?? "",
				this.userId
			]
		);
		await this.db.query("UPDATE prompts_templates SET updated_at = now() WHERE id = $1", [templateId]);
		return rows[0];
	}

	// Points the label at the version (creating the label), recording where it was. `mayProtect`: the caller holds
	// prompts:manage, needed to move a protected label (production by default) or to change protection.
	async moveLabel(
		templateId: string,
		label: string,
		version: VersionRow,
		mayProtect: boolean,
		protect?: boolean
	): Promise<{ label: LabelRow; from: string | null }> {
		const { rows } = await this.db.query<LabelRow>(
			"SELECT * FROM prompts_labels WHERE template_id = $1 AND name = $2 FOR UPDATE",
			[templateId, label]
		);
		const existing = rows[0];
		const isProtected = protect ?? existing?.protected ?? PROTECTED_BY_DEFAULT.includes(label);
		if (!mayProtect && (isProtected || existing?.protected))
			throw forbidden(`label ${label} is protected: moving it requires permission prompts:manage`);
		const { rows: saved } = await this.db.query<LabelRow>(
			`INSERT INTO prompts_labels (template_id, name, version_id, protected, updated_by) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (template_id, name) DO UPDATE SET version_id = $3, protected = $4, updated_by = $5, updated_at = now()
			 RETURNING *`,
			[templateId, label, version.id, isProtected, this.userId]
		);
		const from = existing?.version_id ?? null;
		if (from !== version.id)
			await this.db.query(
				`INSERT INTO prompts_label_moves (template_id, label, from_version_id, to_version_id, moved_by)
				 VALUES ($1, $2, $3, $4, $5)`,
				[templateId, label, from, version.id, this.userId]
			);
		return { label: saved[0], from };
	}

	async removeLabel(templateId: string, label: string, mayProtect: boolean): Promise<LabelRow> {
		const { rows } = await this.db.query<LabelRow>(
			"SELECT * FROM prompts_labels WHERE template_id = $1 AND name = $2 FOR UPDATE",
			[templateId, label]
		);
		if (!rows[0]) throw notFound("label");
		if (rows[0].protected && !mayProtect)
			throw forbidden(`label ${label} is protected: removing it requires permission prompts:manage`);
		await this.db.query("DELETE FROM prompts_labels WHERE template_id = $1 AND name = $2", [templateId, label]);
		await this.db.query(
			`INSERT INTO prompts_label_moves (template_id, label, from_version_id, to_version_id, moved_by)
			 VALUES ($1, $2, $3, NULL, $4)`,
			[templateId, label, rows[0].version_id, this.userId]
		);
		return rows[0];
	}

	async labelMoves(templateId: string, label?: string) {
		const { rows } = await this.db.query(
			`SELECT m.id, m.label, f.number AS from_version, t.number AS to_version, m.moved_by, m.created_at
			 FROM prompts_label_moves m
			 LEFT JOIN prompts_versions f ON f.id = m.from_version_id LEFT JOIN prompts_versions t ON t.id = m.to_version_id
			 WHERE m.template_id = $1 AND ($2::text IS NULL OR m.label = $2) ORDER BY m.created_at DESC, m.id LIMIT 500`,
			[templateId, label ?? null]
		);
		return rows;
	}
}
