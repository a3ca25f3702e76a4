// Formatting helpers of the AI module's components: prices per million tokens, token counts, durations (money: lib/format.ts).
export { formatCost } from "@/lib/format";

export function formatDateTime(value: string | null | undefined): string {
	if (!value) return "—";
	return new Date(value).toLocaleString(undefined, {
		year: "numeric",
		month: "short",
		day: "numeric",
		hour: "2-digit",
		minute: "2-digit",
		second: "2-digit"
	});
}

export const formatDay = (value: string) =>
	new Date(value).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
export const formatTime = (value: string) =>
	new Date(value).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// A price per million tokens: "$2.50".
export function formatPrice(value: number | string | null | undefined): string {
	const n = Number(value ?? 0);
	if (!Number.isFinite(n) || n === 0) return "$0";
	return `$${n < 0.01 ? n.toPrecision(2) : n.toFixed(n % 1 === 0 ? 0 : 2)}`;
}

export const formatNumber = (n: number | string | null | undefined) => Number(n ?? 0).toLocaleString("en-US");

export function formatMs(ms: number | null | undefined): string {
	if (ms === null || ms === undefined) return "—";
	if (ms < 1000) return `${Math.round(ms)} ms`;
	// 1.39 s, 12.5 s, 10 s
	return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
}

// "db, core ,  db" -> ["db", "core"]
export function parseList(text: string): string[] {
	return [
		...new Set(
			text
				.split(",")
				.map(t => t.trim())
				.filter(Boolean)
		)
	];
}

// A blank number input is "not set".
export function optionalNumber(value: number | string | null | undefined): number | undefined {
	if (value === "" || value === null || value === undefined) return undefined;
	const n = Number(value);
	return Number.isFinite(n) ? n : undefined;
}

export const STRATEGY_LABELS: Record<string, string> = {
	priority: "Priority — lowest number first",
	weighted: "Weighted — random by weight",
	latency: "Latency — fastest recently",
	"least-busy": "Least busy — fewest in flight",
	cost: "Cost — cheapest first"
};

export const SCOPE_LABELS: Record<string, string> = {
	organization: "Whole organization",
	user: "Each user",
	api_key: "Each API key",
	model: "One model"
};

export const STATUS_LABELS: Record<string, string> = {
	success: "Success",
	error: "Error",
	cancelled: "Cancelled",
	rate_limited: "Rate limited"
};
