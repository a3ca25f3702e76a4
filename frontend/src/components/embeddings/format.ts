// How the embeddings pages name models and show counts and scores.
import type { EmbeddingJob, EmbeddingModel } from "@/api/embeddings.api";

export const LOCAL_MODEL = "local-hash";
const LEXICAL = "lexical (feature hashing), offline";

// The lexical embedder is not a neural model: say so wherever a model is picked or shown.
export function modelLabel(
	m: Pick<EmbeddingModel, "name" | "kind" | "dimensions"> | undefined | null,
	name?: string
): string {
	const n = m?.name ?? name ?? "—";
	const local = m ? m.kind === "local" : n === LOCAL_MODEL;
	const what = local ? (n === LOCAL_MODEL ? LEXICAL : `${n} — ${LEXICAL}`) : n;
	return m?.dimensions ? `${what} · ${m.dimensions} dims` : what;
}

export const percent = (j: Pick<EmbeddingJob, "done" | "total">) =>
	j.total > 0 ? Math.min(100, Math.round((j.done / j.total) * 100)) : 0;

export const count = (n: number | undefined | null) => (n ?? 0).toLocaleString();

export const score = (v: number | undefined | null) => (v === undefined || v === null ? "—" : v.toFixed(4));

export const jobBadge: Record<EmbeddingJob["status"], string> = {
	queued: "",
	running: "badge--warning",
	completed: "badge--success",
	failed: "badge--danger",
	cancelled: ""
};
