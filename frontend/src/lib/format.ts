// Money as every page shows it.

// Costs of single requests are fractions of a cent: show enough digits to tell them apart, never an exponent.
export function formatCost(value: number | string | null | undefined): string {
	const n = Number(value ?? 0);
	if (!Number.isFinite(n) || n === 0) return "$0.00";
	if (Math.abs(n) >= 1) return `$${n.toFixed(2)}`;
	if (Math.abs(n) >= 0.01) return `$${n.toFixed(4)}`;
	// Three significant digits, written out in full: 0.0000925 → $0.0000925
	const digits = Math.min(12, Math.max(2, 2 - Math.floor(Math.log10(Math.abs(n)))));
	return `$${n.toFixed(digits).replace(/0+$/, "").replace(/\.$/, ".0")}`;
}
