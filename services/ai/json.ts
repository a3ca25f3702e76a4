// A parsed JSON object, as the upstreams' answers and the translated requests are checked before use.
export type Json = Record<string, any>;

export const isObject = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x);
