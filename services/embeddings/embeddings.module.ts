// Manifest of the embeddings module (lib/module.ts): models, collections, documents and their chunks with vectors,
// hybrid search, and the jobs that ingest and re-embed.
import { defineModule } from "../../lib/module";
import { setting } from "../../lib/settings";

export default defineModule({
	name: "embeddings",
	description: "Embedding models, collections of chunked documents, vector, full-text and hybrid search, jobs",
	tablePrefix: "emb_",
	dependsOn: ["auth", "ai"],
	permissions: {
		"embeddings:read": { description: "See collections, documents and jobs; search collections", role: "viewer" },
		"embeddings:write": { description: "Add, change and remove documents; start and cancel jobs", role: "member" },
		"embeddings:manage": {
			description: "Create and remove models and collections; re-embed a collection",
			role: "admin"
		}
	},
	// Embedding through an AI deployment and reranking act as the service for the organization (jobs have no user).
	servicePermissions: ["ai:write"],
	// embeddings (upserts, searches) and embeddings-jobs (jobs) each prove themselves with their own credential.
	container: {
		environment: {
			SERVICE_CREDENTIALS:
				"embeddings:${EMBEDDINGS_SERVICE_CREDENTIAL:?set EMBEDDINGS_SERVICE_CREDENTIAL}," +
				"embeddings-jobs:${EMBEDDINGS_JOBS_SERVICE_CREDENTIAL:?set EMBEDDINGS_JOBS_SERVICE_CREDENTIAL}"
		}
	},
	publishes: ["embedding.events"],
	consumes: [],
	settings: {
		jobsPerOrganization: setting.int({
			env: "EMBEDDINGS_JOBS_PER_ORGANIZATION",
			default: 2,
			min: 1,
			max: 100,
			description: "embedding jobs of one organization running at once, over all replicas"
		}),
		jobLeaseMs: setting.int({
			env: "EMBEDDINGS_JOB_LEASE_MS",
			default: 30_000,
			min: 500,
			max: 3_600_000,
			description: "a running job whose replica sent no heartbeat for this long is resumed by another replica"
		}),
		jobPollMs: setting.int({
			env: "EMBEDDINGS_JOB_POLL_MS",
			default: 2000,
			min: 50,
			max: 600_000,
			description: "how often each replica looks for queued or abandoned jobs"
		}),
		reembedGraceMs: setting.int({
			env: "EMBEDDINGS_REEMBED_GRACE_MS",
			default: 5000,
			min: 0,
			max: 600_000,
			description: "after a re-embed switches models, how long the old chunks stay for searches already under way"
		}),
		batchSize: setting.int({
			env: "EMBEDDINGS_BATCH_SIZE",
			default: 64,
			min: 1,
			max: 2048,
			description: "chunks embedded per model call"
		}),
		hnswM: setting.int({
			env: "EMBEDDINGS_HNSW_M",
			default: 16,
			min: 2,
			max: 100,
			description: "HNSW m (links per node) of a new model's index"
		}),
		hnswEfConstruction: setting.int({
			env: "EMBEDDINGS_HNSW_EF_CONSTRUCTION",
			default: 64,
			min: 4,
			max: 1000,
			description: "HNSW ef_construction of a new model's index"
		}),
		exactSearchBelow: setting.int({
			env: "EMBEDDINGS_EXACT_SEARCH_BELOW",
			// An exact scan of 10,000 rows costs about what an HNSW search at ef_search 400 does (bench/README.md).
			default: 10_000,
			min: 0,
			max: 10_000_000,
			description:
				"a vector search whose collection and filter keep fewer chunks than this orders them exactly instead of using the HNSW index (0: always the index)"
		}),
		fulltextCandidates: setting.int({
			env: "EMBEDDINGS_FULLTEXT_CANDIDATES",
			// ts_rank_cd costs some µs a row: ranking the 60,000 matches of a broad OR query took 300 ms (bench/README.md).
			default: 2000,
			min: 10,
			max: 1_000_000,
			description:
				"full-text matches ranked at most per search (plus as many matching all the words of an OR query)"
		}),
		hnswEfSearch: setting.int({
			env: "EMBEDDINGS_HNSW_EF_SEARCH",
			// On 100,000 chunks of topic-structured text (bench/embeddings-hnsw.ts, m 16, ef_construction 64),
			// recall@10 was 0.943 at 200, 0.965 at 400 and 0.977 at 800, each doubling about doubling the time;
			// near-orthogonal vectors (the random corpus) stay far below 0.95 whatever the setting.
			default: 400,
			min: 1,
			max: 1000,
			description: "HNSW ef_search of a vector search (candidates examined; higher: better recall, slower)"
		})
	}
});
