// The completion-log writer keeps what the database refuses and writes it once the database is back, in order and
// once, in batches PostgreSQL accepts; an outage longer than its bound drops the oldest entries and says how many.
// The database is a stand-in here (a transaction function that fails on demand): what is tested is the writer's
// queue; the real writes to PostgreSQL are covered by test/ai/ai.spec.ts.
import { LogWriter, LogEntry } from "../../services/ai/log-writer";

function fakeDatabase() {
	const written: string[] = []; // request ids, in the order their rows were committed
	const statements: { text: string; params: number }[] = [];
	let down = false;
	const inTransaction = async (fn: (tx: any) => Promise<void>) => {
		if (down) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
		const rows: string[] = [];
		await fn({
			query: async (text: string, values: unknown[] = []) => {
				statements.push({ text, params: values.length });
				if (text.startsWith("INSERT INTO ai_completion_logs"))
					for (let i = 0; i < values.length; i += 23) rows.push(values[i] as string);
				return { rows: [], rowCount: 0 };
			}
		});
		written.push(...rows);
	};
	return { written, statements, inTransaction, setDown: (d: boolean) => (down = d) };
}

const entry = (id: string): LogEntry => ({
	values: [id, ...Array(22).fill(null)],
	events: [{ id: `ev-${id}`, type: "ai.completion.completed" }]
});
const until = async (cond: () => boolean, ms = 5000) => {
	const end = Date.now() + ms;
	while (!cond()) {
		if (Date.now() > end) throw new Error("condition not met in time");
		await new Promise(r => setTimeout(r, 5));
	}
};

// A database whose transactions wait until `open()`: a write that is slow for as long as the test wants.
function gatedDatabase() {
	const db = fakeDatabase();
	let open!: () => void;
	const gate = new Promise<void>(resolve => (open = resolve));
	const inTransaction = async (fn: (tx: any) => Promise<void>) => {
		await gate;
		await db.inTransaction(fn);
	};
	return { ...db, inTransaction, open };
}

describe("completion log writer", () => {
	test("entries refused during an outage are written once the database is back, in order and once each", async () => {
		const db = fakeDatabase();
		const errors: [number, number][] = [];
		const writer = new LogWriter(db.inTransaction, 0, (_err, pending, dropped) => errors.push([pending, dropped]), {
			retryMinMs: 20,
			retryMaxMs: 40
		});
		await writer.add(entry("a"));
		db.setDown(true);
		await writer.add(entry("b"));
		await writer.add(entry("c")); // queued behind the pending retry
		expect(errors[0]).toEqual([1, 0]);
		await until(() => errors.length >= 2); // retried, still down
		db.setDown(false);
		await until(() => db.written.length === 3);
		expect(db.written).toEqual(["a", "b", "c"]);
		await writer.add(entry("d"));
		expect(db.written).toEqual(["a", "b", "c", "d"]);
		expect(await writer.close()).toBe(0);
	});

	test("a long backlog goes in batches of at most 200 rows", async () => {
		const db = fakeDatabase();
		const writer = new LogWriter(db.inTransaction, 0, () => undefined, { retryMinMs: 10, retryMaxMs: 10 });
		db.setDown(true);
		for (let i = 0; i < 450; i++) await writer.add(entry(`r${i}`));
		db.setDown(false);
		await until(() => db.written.length === 450);
		const inserts = db.statements.filter(s => s.text.startsWith("INSERT INTO ai_completion_logs"));
		expect(inserts.map(s => s.params / 23)).toEqual([200, 200, 50]);
		expect(db.written).toEqual(Array.from({ length: 450 }, (_, i) => `r${i}`));
		await writer.close();
	});

	test("a full batch is written at once, and the requests adding to it do not wait for a slow write", async () => {
		const db = gatedDatabase();
		const writer = new LogWriter(db.inTransaction, 10_000, () => undefined);
		// 450 entries while the first batch's write cannot finish: every add returns (when adds awaited the write, the
		// 200th hung), nothing is written yet.
		for (let i = 0; i < 450; i++) await writer.add(entry(`s${i}`));
		expect(db.written).toEqual([]);
		db.open();
		await until(() => db.written.length === 450);
		expect(db.written).toEqual(Array.from({ length: 450 }, (_, i) => `s${i}`));
		const inserts = db.statements.filter(s => s.text.startsWith("INSERT INTO ai_completion_logs"));
		expect(inserts.every(s => s.params / 23 <= 200)).toBe(true);
		expect(await writer.close()).toBe(0);
	});

	test("far behind a slow write, a request waits for the batch being written, and nothing is given up", async () => {
		const db = gatedDatabase();
		const writer = new LogWriter(db.inTransaction, 10_000, () => undefined);
		// Adds until one is held (still pending once everything else queued has run).
		let held: Promise<void> | undefined;
		let added = 0;
		while (!held && added < 2000) {
			const add = writer.add(entry(`b${added++}`));
			const state = await Promise.race([
				add.then(() => "returned"),
				new Promise(resolve => setImmediate(() => resolve("held")))
			]);
			if (state === "held") held = add;
		}
		// 200 in the write that cannot finish, then 399 waiting were taken without holding anyone; the entry that made
		// 400 waiting is held.
		expect(held).toBeDefined();
		expect(added).toBe(600);
		expect(db.written).toEqual([]);
		db.open();
		await held;
		await until(() => db.written.length === added);
		expect(db.written).toEqual(Array.from({ length: added }, (_, i) => `b${i}`));
		expect(await writer.close()).toBe(0);
	});

	test("past its bound the oldest entries are given up and counted; close reports what is still unwritten", async () => {
		const db = fakeDatabase();
		const errors: [number, number][] = [];
		const writer = new LogWriter(db.inTransaction, 0, (_err, pending, dropped) => errors.push([pending, dropped]), {
			maxPending: 5,
			retryMinMs: 10_000,
			retryMaxMs: 10_000
		});
		db.setDown(true);
		for (let i = 0; i < 8; i++) await writer.add(entry(`x${i}`));
		expect(errors).toEqual([[1, 0]]); // one attempt, then the queue waits for the retry
		expect(await writer.close()).toBe(5); // x3…x7 are kept, x0…x2 were given up, and the last attempt says so
		expect(errors[1]).toEqual([5, 3]);
		db.setDown(false);
		expect(await writer.close()).toBe(0);
		expect(db.written).toEqual(["x3", "x4", "x5", "x6", "x7"]);
	});
});
