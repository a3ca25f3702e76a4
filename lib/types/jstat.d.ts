// The part of jstat (no published types) the prompts experiments use.
declare module "jstat" {
	export const jStat: {
		normal: { cdf(x: number, mean: number, sd: number): number };
		studentt: { cdf(x: number, dof: number): number };
	};
}
