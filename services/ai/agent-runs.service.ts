// Agent runs: a completion with tools (the platform's own and those of chosen MCP servers), run in a loop
// (agent-loop.ts) that stops at a step limit and a token/cost budget, pauses for a person's approval of tools marked
// so, and can be cancelled at any point. Runs and steps are kept in ai_agent_runs / ai_agent_steps; with
// `stream: true` (the socket's `stream`) every step is sent as it happens, as NDJSON lines
// `{ "type": "run" | "step", ... }`. Other modules call `ai.agent` (ai.service.ts), which answers when the run ends
// or pauses.
//
// Runs are durable: a run is driven by a job (ai_agent_jobs, JobsMixin) that whichever replica claims holds under a
// lease renewed by heartbeats; a replica that dies (kill -9) stops renewing it and another replica claims the job once
// the lease ran out and continues the run from its last committed step (agent-loop.ts tells what is never redone).
// The call that started the run (or decided an approval) follows it wherever it is driven: the driver broadcasts
// each step (`ai-agent-runs.event`) and the caller's replica answers or streams them, so a stream goes on with the
// steps of the replica that resumed the run.
import { Context, Service, type CallingOptions } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { tenantSql, TenantSql } from "../../lib/db/tenant";
import { cancelCall } from "../../lib/cancel";
import { conflict, invalid } from "../../lib/errors";
import { idempotencyKeyParam } from "../../lib/idempotency";
import { ndjsonReadable } from "../../lib/ndjson";
import { broadcast } from "../../lib/events/broadcast";
import { moduleSettings } from "../../lib/config";
import type { AuthInfo } from "../../lib/permissions";
import type { InFlight } from "../../lib/in-flight";
import { permissionsBinding } from "../../lib/service-identity";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { ServiceIdentityMixin, type ServiceIdentity } from "../../mixins/service-identity.mixin";
import { JobsMixin, kickJobs, type JobRun, type JobsService } from "../../mixins/jobs.mixin";
import { AgentEvent, Cancelled, drive, viewOf } from "./agent-loop";
import { catalogueOf } from "./agent-tools";
import {
	enqueueDrive,
	getRun,
	insertRun,
	listRuns,
	releaseJob,
	runByKey,
	RunRow,
	stepsOf,
	updateRun,
	updateStep
} from "./agent-store";
import aiModule from "./ai.module";
import * as R from "./ai.responses";

const JOBS = "ai_agent_jobs";
// How often a caller following a run re-reads it, in case a broadcast of its end did not reach this replica.
const FOLLOW_CHECK_MS = 2000;

// A caller following a run: the run's events as they come, until it ends or pauses.
interface Follower {
	runId: string;
	events: AgentEvent[];
	wake?: () => void;
	close(): void;
}

interface AgentsThis extends JobsService, Pick<ServiceIdentity, "identityMeta"> {
	inFlight: InFlight;
	followers: Map<string, Set<Follower>>;
	follow(ctx: Context, t: TenantSql, f: Follower, stream: boolean): Promise<unknown>;
	listen(runId: string): Follower;
	cancelRun(t: TenantSql, id: string): Promise<RunRow>;
}

export interface RunEvent {
	runId: string;
	event: AgentEvent;
}

declare module "../../lib/events/types" {
	interface BroadcastEvents {
		// A step (or state) of an agent run, from the replica driving it to the one whose caller follows it.
		"ai-agent-runs.event": RunEvent;
	}
}

// The job: drives the run with the permissions of whoever asked for it (kept in the job), its writes made only while
// this replica holds the lease. A run that is no longer running (cancelled, ended) leaves nothing to do.
// A person's run goes on as that person. A run another module's service started (the execution engine's agent step)
// goes on as this service for the organization, with the permissions the starter proved: the starter's proof was for
// its call to start the run, and each call the run makes (the model, tools) needs a proof of its own.
function driverContext(self: AgentsThis, org: string, auth: AuthInfo): Context {
	if (auth.kind !== "service") return Context.create(self.broker, null as never, {}, { meta: { auth } });
	const permissions = auth.permissions ?? [];
	const driver: AuthInfo = {
		...auth,
		service: self.name,
		organizationId: org,
		boundOrganizationId: org,
		permissions
	};
	const ctx = Context.create(self.broker, null as never, {}, { meta: { auth: driver } });
	const call = ctx.call.bind(ctx) as (action: string, params?: unknown, opts?: CallingOptions) => Promise<unknown>;
	ctx.call = ((action: string, params?: unknown, opts: CallingOptions = {}) =>
		call(action, params, {
			...opts,
			meta: { ...opts.meta, ...self.identityMeta(action, org, permissionsBinding(permissions)) }
		})) as Context["call"];
	return ctx;
}

async function driveJob(this: AgentsThis, job: JobRun): Promise<void> {
	const { runId, auth } = job.job.payload as { runId: string; auth: AuthInfo };
	const org = job.job.organization_id;
	const t = new TenantSql(org, auth);
	const run = await t.one<RunRow>("SELECT id, status FROM ai_agent_runs WHERE id = $1 AND organization_id = $org", [
		runId
	]);
	if (run?.status !== "running") return;
	const controller = new AbortController();
	const onStop = () => controller.abort(job.signal.reason);
	job.signal.addEventListener("abort", onStop, { once: true });
	this.inFlight.add(runId, controller);
	// A root context carrying the driver's identity, as the request that asked for the run did (no endpoint: it is
	// nobody's call).
	const ctx = driverContext(this, org, auth);
	try {
		await drive(
			{
				ctx,
				t,
				signal: controller.signal,
				emit: event => void broadcast(this.broker, "ai-agent-runs.event", { runId, event }),
				commit: fn =>
					job.step(
						tx => fn(new TenantSql(org, auth, tx)),
						() => ({ done: job.job.done })
					),
				release: tt => releaseJob(tt, job.job.id)
			},
			await getRun(t, runId)
		);
	} finally {
		job.signal.removeEventListener("abort", onStop);
		this.inFlight.delete(runId);
	}
}

export interface StartParams {
	model: string;
	prompt?: string;
	messages?: any[];
	system?: string;
	tool_sets?: string[];
	max_steps?: number;
	max_tokens?: number;
	max_cost?: number;
	idempotency_key?: string;
	stream?: boolean;
}

export const agentParams = {
	model: { type: "string", min: 1, max: 200, label: "Model" },
	prompt: { type: "string", min: 1, max: 100_000, optional: true, label: "Prompt" },
	system: { type: "string", max: 100_000, optional: true, label: "System prompt" },
	messages: { type: "array", items: "object", min: 1, max: 1000, optional: true },
	// MCP server names (or ids), and "platform" for the platform's own tools.
	tool_sets: { type: "array", items: { type: "string", min: 1, max: 200 }, max: 20, optional: true },
	max_steps: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true, label: "Step limit" },
	max_tokens: { type: "number", integer: true, positive: true, optional: true, convert: true, label: "Token budget" },
	max_cost: { type: "number", min: 0, optional: true, convert: true, label: "Cost budget ($)" },
	// A start repeated with the key within its window follows the run the first one started (running or ended).
	idempotency_key: idempotencyKeyParam
};

const DEFAULT_MAX_STEPS = 10;

const AgentsService: ServiceSchema = {
	name: "ai-agent-runs",
	mixins: [
		ServiceIdentityMixin,
		CancellableMixin("ai-agent-runs.cancel", why => new Cancelled(why), { drainOnStop: false }),
		JobsMixin<AgentsThis>({
			table: JOBS,
			handlers: { drive: driveJob },
			// A driver that failed outside the loop's own handling (the loop records a model's or tool's failure itself)
			// leaves no run running that nobody drives.
			ended: (tx, job) =>
				tx
					.query(
						`UPDATE ai_agent_runs SET status = 'failed', error = 'the run could not be driven',
						 updated_at = now(), finished_at = now()
						 WHERE id = $1 AND organization_id = $2 AND status = 'running'`,
						[job.run_id, job.organization_id]
					)
					.then(() => undefined),
			settings: () => {
				const s = moduleSettings(aiModule);
				return {
					perOrganization: s.agentRunsPerOrganization,
					perReplica: s.agentRunsPerReplica,
					leaseMs: s.agentRunLeaseMs,
					pollMs: s.agentRunPollMs
				};
			}
		})
	],
	settings: { rest: "/ai/agent-runs" },

	created(this: Service) {
		(this as AgentsThis).followers = new Map();
	},

	events: {
		"ai-agent-runs.event"(this: AgentsThis, ctx: Context<RunEvent>) {
			for (const f of this.followers.get(ctx.params.runId) ?? []) {
				f.events.push(ctx.params.event);
				f.wake?.();
			}
		}
	},

	actions: {
		// Runs until the run ends or pauses for an approval, answering the run with its steps; with `stream`, a stream
		// of its steps as they happen. `external`: a run takes as long as its turns and tools take.
		start: {
			rest: "POST /",
			permission: "ai:write",
			external: true,
			params: { $$strict: "remove", ...agentParams, stream: { type: "boolean", optional: true } },
			response: R.AgentRunDetail,
			async handler(this: AgentsThis, ctx: Context<StartParams>) {
				const p = ctx.params;
				if (!p.prompt && !p.messages) throw invalid("prompt", "give a prompt or messages");
				const t = tenantSql(ctx);
				const followFirst = async () => {
					const first = p.idempotency_key ? await runByKey(t, p.idempotency_key) : undefined;
					return first && this.follow(ctx, t, this.listen(first.id), !!p.stream);
				};
				const first = await followFirst();
				if (first) return first;
				const toolSets = [...new Set(p.tool_sets ?? [])];
				const tools = await catalogueOf(ctx, toolSets);
				const messages = [
					...(p.system ? [{ role: "system", content: p.system }] : []),
					...(p.messages ?? []),
					...(p.prompt ? [{ role: "user", content: p.prompt }] : [])
				];
				let following: Follower | undefined;
				await t
					.transaction(async tx => {
						const run = await insertRun(tx, {
							user_id: tx.auth?.userId ?? null,
							api_key_id: tx.auth?.apiKeyId ?? null,
							model: p.model,
							tool_sets: toolSets,
							messages,
							tools,
							max_steps: p.max_steps ?? DEFAULT_MAX_STEPS,
							max_tokens: p.max_tokens ?? null,
							max_cost: p.max_cost ?? null,
							idempotency_key: p.idempotency_key
						});
						await enqueueDrive(tx, run);
						// Listening before the commit: no step of the run can be missed.
						following = this.listen(run.id);
						return run;
					})
					.catch(err => {
						following?.close();
						// The same key started side by side: the other start's run is the one followed.
						if ((err as { code?: string }).code === "23505" && p.idempotency_key) following = undefined;
						else throw err;
					});
				if (!following) return followFirst();
				kickJobs(this.broker, JOBS);
				return this.follow(ctx, t, following!, !!p.stream);
			}
		},

		// A person's approval or rejection of tool calls awaiting one. Once none awaits, the run continues with the
		// decider's permissions, driven by whichever replica claims its job, and this call follows it.
		decide: {
			rest: "POST /:id/decisions",
			permission: "ai:write",
			external: true,
			params: {
				$$strict: "remove",
				id: "uuid",
				decisions: {
					type: "array",
					min: 1,
					max: 100,
					items: {
						type: "object",
						strict: "remove",
						props: {
							step_id: "uuid",
							approve: "boolean",
							reason: { type: "string", max: 2000, optional: true }
						}
					}
				},
				stream: { type: "boolean", optional: true }
			},
			response: R.AgentRunDetail,
			async handler(
				this: AgentsThis,
				ctx: Context<{
					id: string;
					decisions: { step_id: string; approve: boolean; reason?: string }[];
					stream?: boolean;
				}>
			) {
				const t = tenantSql(ctx);
				const run = await getRun(t, ctx.params.id);
				if (run.status !== "awaiting_approval")
					throw conflict(`the run is ${run.status.replace("_", " ")}, not awaiting approval`, "id");
				let following: Follower | undefined;
				const claimed = await t
					.transaction(async tx => {
						for (const d of ctx.params.decisions) {
							const by = tx.auth?.userId ?? null;
							const who = tx.auth?.userId ? "a person" : "the API";
							const decided = await updateStep(
								tx,
								d.step_id,
								["awaiting_approval"],
								d.approve
									? { status: "approved", decided_by: by }
									: {
											status: "rejected",
											decided_by: by,
											is_error: true,
											result: {
												content: [
													{
														type: "text",
														text: `rejected by ${who}${d.reason ? `: ${d.reason}` : ""}`
													}
												]
											}
										}
							);
							if (!decided) throw invalid("decisions", `step ${d.step_id} is not awaiting approval`);
						}
						// The run is taken over by this call only when nothing awaits a decision any more.
						const waiting = await tx.one(
							`SELECT 1 FROM ai_agent_steps WHERE run_id = $1 AND organization_id = $org
						 AND status = 'awaiting_approval'`,
							[run.id]
						);
						if (waiting) return undefined;
						const claimed = await updateRun(tx, run.id, "awaiting_approval", { status: "running" });
						if (!claimed) return undefined;
						await enqueueDrive(tx, claimed);
						following = this.listen(run.id);
						return claimed;
					})
					.catch(err => {
						following?.close();
						throw err;
					});
				if (!claimed) {
					const current = await getRun(t, run.id);
					return { ...viewOf(current), steps: await stepsOf(t, run.id) };
				}
				kickJobs(this.broker, JOBS);
				return this.follow(ctx, t, following!, !!ctx.params.stream);
			}
		},

		// Stops the run wherever it is: a model turn or tool call in progress is cancelled on whichever replica runs
		// it; a run awaiting approval ends there.
		cancel: {
			rest: "POST /:id/cancel",
			permission: "ai:write",
			params: { id: "uuid" },
			response: R.AgentRun,
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				return viewOf(await this.cancelRun(tenantSql(ctx), ctx.params.id));
			}
		},

		list: {
			rest: "GET /",
			permission: "ai:read",
			params: {
				$$strict: "remove",
				limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true },
				status: { type: "enum", values: R.AGENT_RUN_STATUSES, optional: true }
			},
			response: { type: "array", items: R.AgentRun },
			async handler(ctx: Context<{ limit?: number; status?: string }>) {
				return listRuns(tenantSql(ctx), ctx.params.limit ?? 50, ctx.params.status);
			}
		},

		get: {
			rest: "GET /:id",
			permission: "ai:read",
			params: { id: "uuid" },
			response: R.AgentRunDetail,
			async handler(ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const run = await getRun(t, ctx.params.id);
				const first = run.messages.findIndex(m => m.role === "assistant");
				const asked = (first < 0 ? run.messages : run.messages.slice(0, first)).filter(m => m.role === "user");
				const prompt = asked.at(-1)?.content;
				return {
					...viewOf(run),
					prompt: typeof prompt === "string" ? prompt : null,
					steps: await stepsOf(t, run.id)
				};
			}
		}
	},

	methods: {
		// Written first, then told to the replica driving the run: a driver stopped otherwise hands the run over.
		async cancelRun(this: AgentsThis, t: TenantSql, id: string) {
			const run = await getRun(t, id);
			const cancelled = await t.transaction(async tx => {
				const cancelled = await updateRun(tx, run.id, ["running", "awaiting_approval"], {
					status: "cancelled",
					error: "cancelled"
				});
				if (!cancelled) return undefined;
				await tx.query(
					`UPDATE ai_agent_steps SET status = 'cancelled', updated_at = now()
					 WHERE run_id = $1 AND organization_id = $org AND status IN ('awaiting_approval', 'approved', 'running')`,
					[run.id]
				);
				await tx.query(
					`UPDATE ai_agent_jobs SET status = 'cancelled', finished_at = now(), lease_owner = NULL
					 WHERE run_id = $1 AND organization_id = $org AND status IN ('queued', 'running')`,
					[run.id]
				);
				return cancelled;
			});
			if (!cancelled) throw conflict(`the run is ${run.status.replace("_", " ")} already`, "id");
			cancelCall(this.broker, "ai-agent-runs", run.id);
			return cancelled;
		},

		listen(this: AgentsThis, runId: string): Follower {
			const f: Follower = {
				runId,
				events: [],
				close: () => {
					const set = this.followers.get(runId);
					set?.delete(f);
					if (set?.size === 0) this.followers.delete(runId);
				}
			};
			const set = this.followers.get(runId) ?? new Set();
			set.add(f);
			this.followers.set(runId, set);
			return f;
		},

		// Follows the run wherever it is driven: to its end or pause before answering, or (stream) answering at once
		// with its events as they come. A stream's reader that goes away does not stop the run (closing a page is not a
		// cancellation); the socket's `cancel` does, through ai-agent-runs.cancel with the call's request id.
		async follow(this: AgentsThis, ctx: Context, t: TenantSql, f: Follower, stream: boolean) {
			let ended = false;
			const isEnd = (e: AgentEvent) => e.type === "run" && e.run.status !== "running";
			// A broadcast lost on the way (a replica leaving) must not leave the caller waiting: the run is re-read.
			const check = setInterval(() => {
				getRun(t, f.runId).then(
					run => {
						if (run.status === "running" || ended) return;
						clearInterval(check);
						f.events.push({ type: "run", run: viewOf(run) });
						f.wake?.();
					},
					err => this.logger.warn(`agent run ${f.runId} not re-read: ${(err as Error).message}`)
				);
			}, FOLLOW_CHECK_MS);
			const controller = new AbortController();
			// The caller's cancel (the socket's, by request id) cancels the run; this replica stopping does not.
			controller.signal.addEventListener("abort", () => {
				const why = controller.signal.reason as Error | undefined;
				if (why instanceof Cancelled && why.message === "service stopping") return;
				this.cancelRun(t, f.runId).catch(() => undefined);
			});
			if (ctx.requestID) this.inFlight.add(ctx.requestID, controller);
			const done = () => {
				clearInterval(check);
				f.close();
				if (ctx.requestID) this.inFlight.delete(ctx.requestID);
			};
			async function* events() {
				try {
					while (!ended) {
						while (f.events.length && !ended) {
							const e = f.events.shift()!;
							if (isEnd(e)) ended = true;
							yield e;
						}
						if (ended) return;
						await new Promise<void>(r => (f.wake = r));
						f.wake = undefined;
					}
				} finally {
					done();
				}
			}
			// A reader that goes away stops the following (not the run).
			if (stream)
				return ndjsonReadable(events(), () => {
					ended = true;
					done();
					f.wake?.();
				});
			for await (const _ of events());
			const final = await getRun(t, f.runId);
			return { ...viewOf(final), steps: await stepsOf(t, final.id) };
		}
	}
};

export default AgentsService;
