// The arithmetic of prompt experiments, free of I/O: which variant a subject sees (a hash, so every replica agrees
// with no shared state), and whether the variants differ (a significance test with jstat's distributions).
import crypto from "crypto";
import { jStat } from "jstat";

export type Metric = "success" | "feedback" | "latency" | "cost";

// Higher is better for these; lower for latency and cost.
const HIGHER_BETTER: Record<Metric, boolean> = { success: true, feedback: true, latency: false, cost: false };
const METRIC_WORD: Record<Metric, string> = {
	success: "conversion",
	feedback: "feedback",
	latency: "latency",
	cost: "cost"
};

// The variant (index into `weights`) a subject sees: a uniform number in [0, 1) from sha-256 of (experiment,
// subject), laid over the weights' cumulative shares.
export function assign(experimentId: string, subject: string, weights: number[]): number {
	const h = crypto.createHash("sha256").update(experimentId).update("\u0000").update(subject).digest();
	const u = h.readUInt32BE(0) / 2 ** 32;
	const total = weights.reduce((s, w) => s + w, 0);
	let acc = 0;
	for (let i = 0; i < weights.length; i++) {
		acc += weights[i] / total;
		if (u < acc) return i;
	}
	return weights.length - 1;
}

// The variant a render shows. Sticky by user: the caller's user, else the subject given; by session: the subject
// given, else the caller's user. A request with neither is assigned on its own (its request id).
export function variantFor<V extends { weight: number }>(
	x: { id: string; sticky_by: "user" | "session"; variants: V[] },
	who: { userId?: string | null; subject?: string; requestId: string }
): V {
	const subject =
		(x.sticky_by === "user" ? (who.userId ?? who.subject) : (who.subject ?? who.userId)) ?? who.requestId;
	return x.variants[
		assign(
			x.id,
			subject,
			x.variants.map(v => v.weight)
		)
	];
}

// A variant's observations of the experiment's metric: count, mean and sample variance (a 0/1 metric for success).
export interface Sample {
	id: string;
	n: number;
	mean: number | null;
	variance: number | null;
}

export interface Verdict {
	status: "collecting" | "winner" | "no_difference";
	winner_variant_id: string | null;
	p_value: number | null;
	reason: string;
}

// A, B, C… in the experiment's order.
export const variantLetter = (i: number) => String.fromCharCode(65 + i);

// Two-sided p-value that two proportions are equal (pooled two-proportion z-test).
export function proportionsP(a: Sample, b: Sample): number {
	const [x1, x2] = [a.mean! * a.n, b.mean! * b.n];
	const pooled = (x1 + x2) / (a.n + b.n);
	const se = Math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n));
	if (se === 0) return a.mean === b.mean ? 1 : 0;
	const z = Math.abs(a.mean! - b.mean!) / se;
	return 2 * (1 - jStat.normal.cdf(z, 0, 1));
}

// Two-sided p-value that two means are equal (Welch's t-test: unequal variances).
export function welchP(a: Sample, b: Sample): number {
	const [va, vb] = [(a.variance ?? 0) / a.n, (b.variance ?? 0) / b.n];
	const se = Math.sqrt(va + vb);
	if (se === 0) return a.mean === b.mean ? 1 : 0;
	const t = Math.abs(a.mean! - b.mean!) / se;
	const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1));
	return 2 * (1 - jStat.studentt.cdf(t, df));
}

const fmt = (metric: Metric, v: number) =>
	metric === "latency" ? `${Math.round(v)} ms` : metric === "cost" ? v.toPrecision(3) : v.toFixed(2);
const fmtP = (p: number) => (p < 0.001 ? "< 0.001" : `= ${p.toFixed(3)}`);

// The best variant against each other one. No call before every variant has `minSamples` observations; with more
// than two variants the level is split between the comparisons (Bonferroni). A winner beats every other variant.
export function verdictOf(samples: Sample[], metric: Metric, minSamples: number, confidence: number): Verdict {
	const fewest = Math.min(...samples.map(s => s.n));
	if (fewest < minSamples || samples.some(s => s.mean === null))
		return {
			status: "collecting",
			winner_variant_id: null,
			p_value: null,
			reason: `No difference yet: ${fewest} of ${minSamples} samples`
		};
	const better = (a: Sample, b: Sample) => (HIGHER_BETTER[metric] ? a.mean! > b.mean! : a.mean! < b.mean!);
	const best = samples.reduce((m, s) => (better(s, m) ? s : m));
	const others = samples.filter(s => s !== best);
	const alpha = (1 - confidence) / others.length;
	const test = metric === "success" ? proportionsP : welchP;
	const ps = others.map(o => test(best, o));
	const p = Math.max(...ps);
	const runnerUp = others[ps.indexOf(p)];
	const word = METRIC_WORD[metric];
	const letter = variantLetter(samples.indexOf(best));
	const compared = `${word} ${fmt(metric, best.mean!)} vs ${fmt(metric, runnerUp.mean!)}, p ${fmtP(p)} (needs ${+alpha.toPrecision(3)})`;
	if (p < alpha)
		return { status: "winner", winner_variant_id: best.id, p_value: p, reason: `${letter} wins: ${compared}` };
	return { status: "no_difference", winner_variant_id: null, p_value: p, reason: `No difference: ${compared}` };
}
