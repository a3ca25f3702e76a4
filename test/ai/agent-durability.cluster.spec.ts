// Agent runs survive their replica: two platform nodes (ai + mcp) as child processes over RabbitMQ, a scripted model
// and a stdio MCP server whose tools append to a ledger file (a side effect that can be counted). The node driving a
// run is killed with SIGKILL mid-run; the other claims the run once its lease ran out and finishes it from its last
// committed step: no recorded step redone, every side effect exactly once, and a tool call that was under way when
// its node died answered to the model as interrupted instead of being made again, unless its tool says it is
// read-only or idempotent (then it is made again, under the same idempotency key). The
// runs are started on a third node that drives none (AI_AGENT_RUNS_PER_REPLICA=0): its caller's answer, or stream,
// goes on with the steps of whichever node drives the run, the dead one's and then the survivor's. A run paused for an
// approval holds no node: it stays paused when they all die, and the decision has a new node continue it.
import crypto from "crypto";
import fs from "fs";
import os from "os";
import path from "path";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith } from "../helpers/infra";
import { TINY } from "../mcp/stack";
import { startTestCluster, type ClusterNode, type TestCluster } from "../helpers/cluster";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import type { AuthInfo } from "../../lib/permissions";
import { drain } from "../helpers/ai";
import { ScriptedModel, toolResults } from "./agent-model";

jest.setTimeout(180_000);

describeWith(["postgres", "rabbitmq"])("agent runs across replicas (kill -9)", () => {
	let cluster: TestCluster;
	let sql: pg.Client;
	let caller: ServiceBroker;
	let admin: AuthInfo;
	const model = new ScriptedModel();
	const ledger = path.join(os.tmpdir(), `agent-ledger-${crypto.randomUUID()}.txt`);
	// The nodes that drive runs, and the one that only starts and follows them.
	const replicas: ClusterNode[] = [];
	let follower: ClusterNode;
	let ledgerServer: any;

	const lines = () => (fs.existsSync(ledger) ? fs.readFileSync(ledger, "utf8").split("\n").filter(Boolean) : []);
	const runOf = async (id: string) => (await sql.query("SELECT * FROM ai_agent_runs WHERE id = $1", [id])).rows[0];
	const stepsOf = async (id: string) =>
		(await sql.query("SELECT * FROM ai_agent_steps WHERE run_id = $1 ORDER BY seq", [id])).rows;
	// The node holding the run's job, from its lease (`<nodeID>:<uuid>`).
	const holder = async (runId: string) => {
		const job = await waitUntil(
			"the run's job is claimed",
			async () =>
				(
					await sql.query("SELECT lease_owner FROM ai_agent_jobs WHERE run_id = $1 AND status = 'running'", [
						runId
					])
				).rows[0],
			j => !!j?.lease_owner
		);
		const node = replicas.find(n => job.lease_owner.startsWith(`${n.nodeID}:`));
		if (!node) throw new Error(`no replica holds ${job.lease_owner}`);
		return node;
	};
	// Starts the run on the follower; the promise of its answer (or stream) and the run's id once it exists.
	const startRun = async (model: string, prompt: string, stream: boolean) => {
		const answer = caller.call<any, any>(
			"ai-agent-runs.start",
			{ model, prompt, tool_sets: ["ledger"], stream },
			{ ...as(admin), nodeID: follower.nodeID }
		);
		answer.catch(() => undefined);
		const row = await waitUntil(
			"the run is created",
			async () => (await sql.query("SELECT id FROM ai_agent_runs WHERE model = $1", [model])).rows[0],
			r => !!r
		);
		return { runId: row.id as string, answer };
	};
	const kill = async (node: ClusterNode) => {
		node.proc.kill("SIGKILL");
		await node.exited;
	};
	// A run of the model `name` whose one call of the ledger's `tool` is under way (its entry recorded, its answer not) when the
	// node driving the run is killed. A fresh replica `spare` comes up first, so another one can take the run over.
	// The model's last answer is `<reply>: <the call's result>`.
	const killDuringCall = async (spare: string, name: string, tool: string, entry: string, reply: string) => {
		const node = cluster.start(spare, "ai,mcp");
		replicas.push(node);
		await node.ready;
		model.script(name, body => {
			const results = toolResults(body);
			if (!results.length) return { calls: [{ name: `ledger__${tool}`, arguments: { entry } }] };
			return { content: `${reply}: ${results[0]}` };
		});
		const { runId, answer } = await startRun(name, `call ${tool}`, false);
		await waitUntil(
			"the call is under way",
			async () => lines(),
			l => l.includes(entry)
		);
		const step = (await stepsOf(runId)).find(s => s.kind === "tool");
		expect(step.status).toBe("running");
		expect(step.call_started_at).not.toBeNull();
		await kill(await holder(runId));
		return { runId, answer };
	};

	beforeAll(async () => {
		const base = await model.start();
		cluster = await startTestCluster("agentdur", {
			AI_AGENT_RUN_LEASE_MS: "2000",
			AI_AGENT_RUN_POLL_MS: "200",
			AI_LOG_BATCH_MS: "0",
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			MCP_HEALTH_INTERVAL_MS: "0",
			MCP_REFRESH_INTERVAL_MS: "0"
		});
		sql = new pg.Client({ connectionString: cluster.db.url });
		await sql.connect();
		await cluster.start("core", "auth,secrets", { MASTER_KEY: crypto.randomBytes(32).toString("base64") }).ready;
		replicas.push(cluster.start("ai-1", "ai,mcp"), cluster.start("ai-2", "ai,mcp"));
		follower = cluster.start("ai-0", "ai,mcp", { AI_AGENT_RUNS_PER_REPLICA: "0" });
		await Promise.all([...replicas, follower].map(n => n.ready));
		caller = await cluster.caller(["auth", "ai-providers", "ai-deployments", "ai-agent-runs", "mcp-servers"]);
		await cluster.servedBy("ai-agent-runs.start", [...replicas, follower]);
		admin = await cluster.register("agent-durable@example.com");
		const provider: any = await caller.call("ai-providers.create", { name: "scripted", base_url: base }, as(admin));
		for (const name of ["durable", "interrupted", "retrier", "careful"])
			await caller.call(
				"ai-deployments.create",
				{ provider_id: provider.id, name, provider_model: name },
				as(admin)
			);
		ledgerServer = await caller.call(
			"mcp-servers.create",
			{ name: "ledger", transport: "stdio", command: process.execPath, args: [TINY, ledger] },
			as(admin)
		);
	}, 120_000);

	afterAll(async () => {
		await sql?.end().catch(() => undefined);
		await cluster?.stop();
		await model.stop();
		fs.rmSync(ledger, { force: true });
	});

	test("a run whose node dies during a model turn is finished by the other; each side effect once", async () => {
		// By the conversation, not the request count: a turn redone after the kill gets the same answer.
		model.script("durable", body => {
			const done = toolResults(body).length;
			if (done < 2) return { calls: [{ name: "ledger__record", arguments: { entry: `durable-${done + 1}` } }] };
			return { content: `done: ${toolResults(body).join(" | ")}` };
		});
		// The third turn (after both tool calls) waits until its node is dead.
		model.holdingIf.set("durable", body => toolResults(body).length >= 2);
		const { runId, answer } = await startRun("durable", "record two entries", true);
		const streamed = answer.then(drain);
		await waitUntil(
			"the third turn is under way",
			async () => model.waiting(),
			n => n === 1,
			60_000
		);
		const first = await holder(runId);
		expect(lines()).toEqual(["durable-1", "durable-2"]);
		expect((await runOf(runId)).status).toBe("running");
		await kill(first);
		model.holdingIf.delete("durable");
		model.release();

		const end = await waitUntil(
			"the run is finished by the other replica",
			() => runOf(runId),
			r => r.status !== "running",
			60_000
		);
		expect(end.status).toBe("completed");
		expect(end.output).toBe("done: recorded durable-1 | recorded durable-2");
		const steps = await stepsOf(runId);
		expect(steps.map(s => `${s.kind}:${s.status}`)).toEqual([
			"model:completed",
			"tool:completed",
			"model:completed",
			"tool:completed",
			"model:completed"
		]);
		expect(end.turns).toBe(3);
		// Each tool's side effect happened once; each recorded call was made once, under its own idempotency key.
		expect(lines()).toEqual(["durable-1", "durable-2"]);
		const tools = steps.filter(s => s.kind === "tool");
		expect(tools.map(s => s.attempts)).toEqual([1, 1]);
		expect(new Set(tools.map(s => s.idempotency_key)).size).toBe(2);
		const survivor = replicas.find(n => n !== first)!;
		const job = (await sql.query("SELECT * FROM ai_agent_jobs WHERE run_id = $1", [runId])).rows;
		expect(job).toHaveLength(1);
		expect(job[0]).toMatchObject({ status: "completed", attempts: 2 });
		// The survivor answers for it too.
		const detail: any = await caller.call(
			"ai-agent-runs.get",
			{ id: runId },
			{ ...as(admin), nodeID: survivor.nodeID }
		);
		expect(detail.steps).toHaveLength(5);
		// The follower's stream went on with the survivor's steps, to the run's end.
		const events = await streamed;
		const told = events.filter(e => e.type === "step").map(e => `${e.step.kind}:${e.step.seq}:${e.step.status}`);
		expect(told).toEqual([
			"model:1:completed",
			"tool:2:running",
			"tool:2:completed",
			"model:3:completed",
			"tool:4:running",
			"tool:4:completed",
			"model:5:completed"
		]);
		expect(events.at(-1)).toMatchObject({ type: "run", run: { id: runId, status: "completed" } });
	});

	test("a tool call under way when its node dies is reported as interrupted, never made twice", async () => {
		// ai-3 replaces the node the first test killed, so two replicas again.
		const { runId, answer } = await killDuringCall("ai-3", "interrupted", "record_slow", "slow-1", "outcome");

		const end = await waitUntil(
			"the run is finished by the other replica",
			() => runOf(runId),
			r => r.status !== "running",
			60_000
		);
		expect(end.status).toBe("completed");
		const steps = await stepsOf(runId);
		expect(steps.map(s => `${s.kind}:${s.status}`)).toEqual([
			"model:completed",
			"tool:interrupted",
			"model:completed"
		]);
		expect(steps[1].attempts).toBe(1);
		expect(end.output).toMatch(/^outcome: error: interrupted: .*outcome is unknown/);
		expect(lines().filter(l => l === "slow-1")).toHaveLength(1);
		// The caller waiting on the follower got the run's end.
		const answered = await answer;
		expect(answered).toMatchObject({ id: runId, status: "completed" });
		expect(answered.steps.map((s: any) => s.status)).toEqual(["completed", "interrupted", "completed"]);
	});

	test("a call under way when its node dies is made again when its tool says it is read-only", async () => {
		const { runId, answer } = await killDuringCall("ai-5", "retrier", "peek_slow", "peek-1", "retried");
		const answered = await answer;
		expect(answered).toMatchObject({ status: "completed", output: "retried: peeked peek-1 (2)" });
		const [, tool] = await stepsOf(runId);
		expect(tool).toMatchObject({ status: "completed", attempts: 2, idempotency_key: `agent-${runId}-tool-2` });
		expect(lines().filter(l => l === "peek-1")).toHaveLength(2);
	});

	test("a run awaiting approval stays paused when its nodes die, and the decision continues it elsewhere", async () => {
		const tools: any = await caller.call(
			"mcp-tools.list",
			{ pageSize: 100, query: { server_id: ledgerServer.id } },
			as(admin)
		);
		const record = tools.rows.find((t: any) => t.name === "record");
		await caller.call("mcp-tools.update", { id: record.id, requires_approval: true }, as(admin));
		model.script("careful", body => {
			const results = toolResults(body);
			if (!results.length) return { calls: [{ name: "ledger__record", arguments: { entry: "approved-1" } }] };
			return { content: `ok: ${results[0]}` };
		});
		const { runId, answer } = await startRun("careful", "record after approval", false);
		const paused = await answer;
		expect(paused.status).toBe("awaiting_approval");
		// Every node that could have held it dies; a new one comes up and looks for runs.
		for (const n of replicas.filter(r => r.proc.exitCode === null && r.proc.signalCode === null)) await kill(n);
		const fresh = cluster.start("ai-4", "ai,mcp");
		replicas.push(fresh);
		await fresh.ready;
		await new Promise(r => setTimeout(r, 2500)); // a lease and a few polls: nothing may pick the run up
		expect((await runOf(runId)).status).toBe("awaiting_approval");
		const active = await sql.query(
			"SELECT count(*)::int AS n FROM ai_agent_jobs WHERE run_id = $1 AND status IN ('queued', 'running')",
			[runId]
		);
		expect(active.rows[0].n).toBe(0);
		expect(lines()).not.toContain("approved-1");

		const step = paused.steps.find((s: any) => s.kind === "tool");
		const done: any = await caller.call(
			"ai-agent-runs.decide",
			{ id: runId, decisions: [{ step_id: step.id, approve: true }] },
			{ ...as(admin), nodeID: follower.nodeID }
		);
		expect(done.status).toBe("completed");
		expect(done.output).toBe("ok: recorded approved-1");
		expect(lines().filter(l => l === "approved-1")).toHaveLength(1);
		const jobs = (
			await sql.query("SELECT status FROM ai_agent_jobs WHERE run_id = $1 ORDER BY created_at", [runId])
		).rows;
		expect(jobs.map(j => j.status)).toEqual(["completed", "completed"]);
	});
});
