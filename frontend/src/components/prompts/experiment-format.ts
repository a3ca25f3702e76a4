// Words and numbers of the experiments dashboard.
import type { PromptExperiment, PromptExperimentMetric } from "@/api/prompts.api";

export const METRICS: { value: PromptExperimentMetric; label: string }[] = [
	{ value: "success", label: "Conversion (reported success)" },
	{ value: "feedback", label: "Feedback score (−1 to 1)" },
	{ value: "latency", label: "Latency (lower wins)" },
	{ value: "cost", label: "Cost (lower wins)" }
];
export const metricLabel = (m: PromptExperimentMetric) => METRICS.find(x => x.value === m)?.label ?? m;

export const STATUS: Record<PromptExperiment["status"], { label: string; badge: string }> = {
	running: { label: "Running", badge: "badge--lead" },
	completed: { label: "Completed", badge: "badge--success" },
	stopped: { label: "Stopped", badge: "" }
};

// A, B, C… in the experiment's order.
export const variantLetter = (i: number) => String.fromCharCode(65 + i);

export const formatRate = (v: number | null | undefined) => (v == null ? "—" : v.toFixed(2));
export const formatLatency = (v: number | null | undefined) => (v == null ? "—" : `${Math.round(v)} ms`);
export const formatScore = (v: number | null | undefined) => (v == null ? "—" : v.toFixed(2));
export const formatTokens = (v: number | null | undefined) => (v == null ? "—" : Math.round(v).toLocaleString("en-US"));
