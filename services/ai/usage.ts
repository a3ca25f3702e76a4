// Tokens and cost of a completion. Providers report usage; when one does not, tokens are estimated locally
// (about four characters per token, the usual rule of thumb for English and code).
export interface Usage {
	prompt: number; // every input token, cached and cache writes included
	completion: number;
	cached: number; // read from the provider's prompt cache
	cacheWrite?: number; // written to it (Anthropic charges these above the input price)
}

export function estimateTokens(value: unknown): number {
	const text = typeof value === "string" ? value : JSON.stringify(value ?? "");
	return Math.ceil(text.length / 4);
}

export function usageOf(reported: any, messages: unknown, completionText: string): Usage {
	if (reported && typeof reported.prompt_tokens === "number") {
		const cacheWrite = reported.prompt_tokens_details?.cache_write_tokens ?? 0;
		return {
			prompt: reported.prompt_tokens,
			completion: reported.completion_tokens ?? 0,
			cached: reported.prompt_tokens_details?.cached_tokens ?? 0,
			...(cacheWrite > 0 ? { cacheWrite } : {})
		};
	}
	return { prompt: estimateTokens(messages), completion: estimateTokens(completionText), cached: 0 };
}

export interface Prices {
	input_price: number | string;
	output_price: number | string;
	cached_input_price: number | string;
	// null or absent: cache writes cost what input does.
	cache_write_price?: number | string | null;
}

// Prices are per million tokens. Rounded to a millionth of a millionth of a dollar: binary floating point would
// otherwise store and show 0.0000021 as 0.0000021000000000000002.
export function costOf(u: Usage, p: Prices): number {
	const written = u.cacheWrite ?? 0;
	const uncached = Math.max(0, u.prompt - u.cached - written);
	const writePrice = p.cache_write_price == null ? Number(p.input_price) : Number(p.cache_write_price);
	const dollars =
		(uncached * Number(p.input_price) +
			u.cached * Number(p.cached_input_price) +
			written * writePrice +
			u.completion * Number(p.output_price)) /
		1_000_000;
	return Math.round(dollars * 1e12) / 1e12;
}
