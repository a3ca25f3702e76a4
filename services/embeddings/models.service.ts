// embeddings-models: the models collections embed with. The built-in local-hash (384 dimensions, lib/text) is every
// organization's without setup; others name an AI deployment that serves /v1/embeddings, or are the local embedder
// at other dimensions. Creating a model creates
// its HNSW index (one per model and dimension, partial over emb_chunks).
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb } from "../../lib/db";
import { moduleSettings } from "../../lib/config";
import { conflict, fromDbError, invalid, notFound } from "../../lib/errors";
import { announceChange } from "../../lib/live";
import embeddingsModule from "./embeddings.module";
import { orgOf, paged, pageParams } from "./ingest";
import { createModelIndex, indexName, type ModelRow } from "./store";
import { pageOf } from "../../lib/response";
import { modelRow } from "./embeddings.responses";

const view = (m: ModelRow & { created_at: string; updated_at: string }) => ({
	id: m.id,
	name: m.name,
	kind: m.kind,
	deployment: m.deployment,
	dimensions: m.dimensions,
	builtIn: m.organization_id === null,
	createdAt: m.created_at,
	updatedAt: m.updated_at
});

const COLUMNS = "id, organization_id, name, kind, deployment, dimensions, created_at, updated_at";

async function ownModel(org: string, id: string) {
	const { rows } = await (
		await getDb()
	).query(`SELECT ${COLUMNS} FROM emb_models WHERE id = $1::text::uuid AND organization_id = $2`, [id, org]);
	if (!rows[0]) throw notFound("model", "id");
	return rows[0];
}

const announce = (ctx: Context, id: string, name: string, action: "created" | "updated" | "removed") =>
	announceChange(ctx.broker, ctx, {
		entity: "embeddings-models",
		noun: "embedding model",
		id,
		action,
		label: name,
		permission: "embeddings:read"
	});

const uuidParam = { id: { type: "uuid", label: "Model" } };

// A model naming a deployment must be able to embed at its dimensions: one probe text through ai.embed, as the
// caller (who configures the model), before anything is stored. A deployment that is missing, cannot embed or
// returns another size is a 422 naming the field.
async function probe(ctx: Context, deployment: string, dimensions: number): Promise<void> {
	let answer: { data?: { embedding?: unknown }[] } | undefined;
	try {
		answer = await ctx.call("ai.embed", { model: deployment, input: ["dimension check"] });
	} catch (err) {
		throw invalid("deployment", `cannot embed with ${deployment}: ${(err as Error).message}`);
	}
	const vector = answer?.data?.[0]?.embedding;
	if (!Array.isArray(vector)) throw invalid("deployment", `${deployment} returned no embedding`);
	if (vector.length !== dimensions)
		throw invalid("dimensions", `${deployment} returns ${vector.length} dimensions, not ${dimensions}`);
}

const EmbeddingsModelsService: ServiceSchema = {
	name: "embeddings-models",
	settings: { rest: "/embeddings/models" },
	actions: {
		list: {
			rest: "GET /",
			permission: "embeddings:read",
			params: pageParams,
			response: pageOf(modelRow),
			async handler(ctx: Context<{ page?: number; pageSize?: number }>) {
				const from = "FROM emb_models WHERE organization_id IS NULL OR organization_id = $1";
				const q = { select: `SELECT ${COLUMNS}`, from, order: "organization_id NULLS FIRST, name" };
				const page = await paged<any>(await getDb(), q, [orgOf(ctx)], ctx.params);
				return { ...page, rows: page.rows.map(view) };
			}
		},
		get: {
			rest: "GET /:id",
			permission: "embeddings:read",
			params: uuidParam,
			response: modelRow,
			async handler(ctx: Context<{ id: string }>) {
				const { rows } = await (
					await getDb()
				).query(
					`SELECT ${COLUMNS} FROM emb_models WHERE id = $1::text::uuid
					AND (organization_id IS NULL OR organization_id = $2)`,
					[ctx.params.id, orgOf(ctx)]
				);
				if (!rows[0]) throw notFound("model", "id");
				return view(rows[0]);
			}
		},
		create: {
			rest: "POST /",
			permission: "embeddings:manage",
			params: {
				$$strict: true,
				name: { type: "string", min: 1, max: 200, trim: true, label: "Name" },
				// Absent: the local embedder at these dimensions (lib/text/local-embedder.ts).
				deployment: { type: "string", min: 1, max: 200, trim: true, optional: true, label: "Deployment" },
				dimensions: { type: "number", integer: true, min: 1, max: 2000, convert: true, label: "Dimensions" }
			},
			response: modelRow,
			async handler(ctx: Context<{ name: string; deployment?: string; dimensions: number }>) {
				const org = orgOf(ctx);
				const p = ctx.params;
				if (p.name === "local-hash") throw invalid("name", "local-hash is the built-in model's name");
				if (p.deployment) await probe(ctx, p.deployment, p.dimensions);
				const s = moduleSettings(embeddingsModule);
				const row = await (
					await getDb()
				)
					.transaction(async tx => {
						const { rows } = await tx.query(
							`INSERT INTO emb_models (organization_id, name, kind, deployment, dimensions)
							VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
							[org, p.name, p.deployment ? "deployment" : "local", p.deployment ?? null, p.dimensions]
						);
						// An empty index, made in the same transaction: it grows with the model's chunks.
						await createModelIndex(tx, rows[0], { m: s.hnswM, efConstruction: s.hnswEfConstruction });
						return rows[0];
					})
					.catch((e: any) => {
						if (e?.code === "23505") throw conflict("a model with this name already exists", "name");
						throw fromDbError(e, "model");
					});
				announce(ctx, row.id, row.name, "created");
				return view(row);
			}
		},
		update: {
			rest: "PATCH /:id",
			permission: "embeddings:manage",
			params: {
				$$strict: true,
				...uuidParam,
				name: { type: "string", min: 1, max: 200, trim: true, optional: true, label: "Name" },
				deployment: { type: "string", min: 1, max: 200, trim: true, optional: true, label: "Deployment" }
			},
			response: modelRow,
			// The dimensions and kind never change: the model's vectors and index are of that kind and size.
			async handler(ctx: Context<{ id: string; name?: string; deployment?: string }>) {
				const org = orgOf(ctx);
				const m = await ownModel(org, ctx.params.id);
				if (ctx.params.name === "local-hash") throw invalid("name", "local-hash is the built-in model's name");
				if (ctx.params.deployment && m.kind === "local") throw invalid("deployment", "a local model has none");
				if (ctx.params.deployment && ctx.params.deployment !== m.deployment)
					await probe(ctx, ctx.params.deployment, m.dimensions);
				const { rows } = await (
					await getDb()
				)
					.query(
						`UPDATE emb_models SET name = $3, deployment = $4, updated_at = now()
						WHERE id = $1 AND organization_id = $2 RETURNING ${COLUMNS}`,
						[m.id, org, ctx.params.name ?? m.name, ctx.params.deployment ?? m.deployment]
					)
					.catch((e: any) => {
						if (e?.code === "23505") throw conflict("a model with this name already exists", "name");
						throw fromDbError(e, "model");
					});
				announce(ctx, m.id, rows[0].name, "updated");
				return view(rows[0]);
			}
		},
		remove: {
			rest: "DELETE /:id",
			permission: "embeddings:manage",
			params: uuidParam,
			response: modelRow,
			async handler(ctx: Context<{ id: string }>) {
				const org = orgOf(ctx);
				const m = await ownModel(org, ctx.params.id);
				await (
					await getDb()
				).transaction(async tx => {
					const used = await tx.query(
						"SELECT name FROM emb_collections WHERE model_id = $1 OR pending_model_id = $1 LIMIT 1",
						[m.id]
					);
					if (used.rows[0])
						throw conflict(`collection ${used.rows[0].name} uses this model; re-embed or remove it first`);
					await tx.query(`DROP INDEX IF EXISTS ${indexName(m.id)}`);
					await tx.query("DELETE FROM emb_chunks WHERE model_id = $1", [m.id]);
					await tx.query("DELETE FROM emb_models WHERE id = $1 AND organization_id = $2", [m.id, org]);
				});
				announce(ctx, m.id, m.name, "removed");
				return view(m);
			}
		}
	}
};
export default EmbeddingsModelsService;
