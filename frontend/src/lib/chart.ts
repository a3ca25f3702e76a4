// The charts' series colours (components/ai/LineChart.vue, components/usage/BarChart.vue): the same series order
// gets the same colour on every page. Their styles are the .chart rules in styles/main.css.
const COLORS = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#db2777", "#7c3aed", "#64748b", "#0d9488"];

export const seriesColor = (i: number) => COLORS[i % COLORS.length];
