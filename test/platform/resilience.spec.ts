// lib/resilience.ts: back-off delays (cockatiel's generator), trying candidates in order, deadlines. No infrastructure.
import { exponentialDelay, firstSuccess, withDeadline } from "../../lib/resilience";

describe("exponentialDelay", () => {
	test("doubles from the first delay and stops at the cap", () => {
		const delay = exponentialDelay(500, 30_000);
		expect([0, 1, 2, 5, 6, 20, 2000].map(delay)).toEqual([500, 1000, 2000, 16_000, 30_000, 30_000, 30_000]);
	});
});

describe("firstSuccess", () => {
	const never = (c: string, control: AbortController) =>
		new Promise<string>((_, reject) =>
			control.signal.addEventListener("abort", () => reject(control.signal.reason))
		);

	test("goes on after a failure the caller lets pass, and returns the first success with its candidate", async () => {
		const failures: string[] = [];
		const r = await firstSuccess(
			["a", "b", "c"],
			{
				signal: new AbortController().signal,
				timeout: () => ({ ms: 1000, reason: () => "late" }),
				attempt: async c => {
					if (c === "a") throw new Error("a down");
					return c.toUpperCase();
				},
				failed: (c, err) => void failures.push(`${c}: ${(err as Error).message}`)
			},
			err => err
		);
		expect(r.candidate).toBe("b");
		expect(r.result).toBe("B");
		expect(failures).toEqual(["a: a down"]);
	});

	test("stops at the error `failed` returns, and throws `last` when every candidate failed", async () => {
		const opts = {
			signal: new AbortController().signal,
			timeout: () => ({ ms: 1000, reason: () => "late" }),
			attempt: async (c: string): Promise<string> => {
				throw new Error(c);
			}
		};
		const stopped = firstSuccess(["x", "y"], { ...opts, failed: () => new Error("stop") }, () => new Error("none"));
		await expect(stopped).rejects.toThrow("stop");
		const tried: string[] = [];
		const all = firstSuccess(["x", "y"], { ...opts, failed: c => void tried.push(c) }, e => e);
		await expect(all).rejects.toThrow("y");
		expect(tried).toEqual(["x", "y"]);
		await expect(firstSuccess([], { ...opts, failed: () => undefined }, () => new Error("none"))).rejects.toThrow(
			"none"
		);
	});

	test("aborts an attempt at its deadline with the deadline's reason", async () => {
		const reasons: unknown[] = [];
		const r = firstSuccess(
			["slow"],
			{
				signal: new AbortController().signal,
				timeout: () => ({ ms: 10, reason: () => "too slow" }),
				attempt: never,
				failed: (_c, err) => void reasons.push(err)
			},
			() => new Error("none left")
		);
		await expect(r).rejects.toThrow("none left");
		expect(reasons).toEqual(["too slow"]);
	});

	test("the caller's cancellation reaches the running attempt, and a successful one after it returned", async () => {
		const caller = new AbortController();
		const running = firstSuccess(
			["one"],
			{
				signal: caller.signal,
				timeout: () => ({ ms: 5000, reason: () => "late" }),
				attempt: never,
				failed: e => e
			},
			() => undefined
		);
		caller.abort("client gone");
		await expect(running).rejects.toBe("one");

		const later = new AbortController();
		const ok = await firstSuccess(
			["s"],
			{
				signal: later.signal,
				timeout: () => ({ ms: 5000, reason: () => "late" }),
				attempt: async () => 1,
				failed: () => 1
			},
			() => undefined
		);
		later.abort("client gone");
		expect(ok.control.signal.aborted).toBe(true);
		expect(ok.control.signal.reason).toBe("client gone");
	});
});

describe("withDeadline", () => {
	test("calls `expired` when the work outlasts its deadline, and not once it has settled", async () => {
		const control = new AbortController();
		const late = withDeadline(
			20,
			() => control.abort("late"),
			() =>
				new Promise((_, reject) =>
					control.signal.addEventListener("abort", () => reject(control.signal.reason))
				)
		);
		await expect(late).rejects.toBe("late");
		let expired = 0;
		await expect(
			withDeadline(
				20,
				() => expired++,
				async () => "quick"
			)
		).resolves.toBe("quick");
		await expect(
			withDeadline(
				undefined,
				() => expired++,
				() => new Promise(r => setTimeout(() => r("slow"), 30))
			)
		).resolves.toBe("slow");
		await new Promise(r => setTimeout(r, 40));
		expect(expired).toBe(0);
	});
});
