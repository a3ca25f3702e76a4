// The one error shape clients see, over REST and over the socket: { error: { code, message, fields?, details? } }.
// `details` is what a 4xx error puts in `data.details` for its client to act on (which budget refused, say).
// Internal details (stack traces, SQL, hosts) never leave the gateway; 5xx messages are generic.
import { MAX_JSON_DEPTH } from "./body";

const BODY_PARSER: Record<string, { status: number; code: string; message: string }> = {
	"entity.parse.failed": { status: 400, code: "MALFORMED_JSON", message: "request body is not valid JSON" },
	"entity.too.deep": {
		status: 400,
		code: "JSON_TOO_DEEP",
		message: `request body nests deeper than ${MAX_JSON_DEPTH} levels`
	},
	"entity.too.large": { status: 413, code: "PAYLOAD_TOO_LARGE", message: "request body is too large" },
	"encoding.unsupported": { status: 415, code: "UNSUPPORTED_ENCODING", message: "unsupported content encoding" },
	"charset.unsupported": { status: 415, code: "UNSUPPORTED_CHARSET", message: "unsupported charset" },
	"request.size.invalid": {
		status: 400,
		code: "MALFORMED_BODY",
		message: "request body length differs from Content-Length"
	},
	"request.aborted": { status: 400, code: "MALFORMED_BODY", message: "request body was cut off" },
	// zlib's errors (Z_DATA_ERROR, Z_BUF_ERROR, …) carry no type: a body that does not decode as it says it is.
	zlib: { status: 400, code: "MALFORMED_BODY", message: "request body does not decode as its Content-Encoding says" }
};

// Moleculer's own failures of the cluster: the dependency is down or too slow, not the client's fault.
const UNAVAILABLE = new Set([
	"SERVICE_NOT_AVAILABLE",
	"REQUEST_TIMEOUT",
	"REQUEST_REJECTED",
	"QUEUE_FULL",
	"CIRCUIT_BREAKER_OPEN"
]);

const EXPLAINED = new Set(["UPSTREAM_FAILED", "UPSTREAM_RATE_LIMITED", "NOT_SUPPORTED"]);

export interface FormattedError {
	status: number;
	body: {
		error: {
			code: string;
			message: string;
			fields?: { field: string; message: string }[];
			details?: Record<string, unknown>;
		};
	};
}

export function formatError(err: any): FormattedError {
	const zlib = typeof err?.code === "string" && /^Z_/.test(err.code);
	const parser = err && (BODY_PARSER[err.type] ?? (zlib ? BODY_PARSER.zlib : undefined));
	if (parser) return { status: parser.status, body: { error: { code: parser.code, message: parser.message } } };
	if (err && UNAVAILABLE.has(err.type))
		return {
			status: 503,
			body: {
				error: {
					code: "SERVICE_UNAVAILABLE",
					message: "a service this request needs is unavailable; try again"
				}
			}
		};
	if (err?.type === "SERVICE_NOT_FOUND")
		return { status: 404, body: { error: { code: "NOT_FOUND", message: "no such endpoint" } } };

	let status = typeof err?.code === "number" && err.code >= 400 && err.code < 600 ? err.code : 500;
	if (err?.type === "VALIDATION_ERROR") status = 422;
	const fields = Array.isArray(err?.data)
		? err.data
				.filter((d: any) => d && d.field)
				.map((d: any) => ({ field: String(d.field), message: String(d.message) }))
		: [];
	const code = status >= 500 && !err?.type ? "INTERNAL_ERROR" : String(err?.type || err?.name || "ERROR");
	// 5xx messages stay generic, except the platform's own explanations of an upstream failure (keys are already cut).
	const message =
		status >= 500 && status !== 503 && !EXPLAINED.has(err?.type) ? "internal error" : fieldsMessage(err, fields);
	const details = err?.data?.details;
	const shown = status < 500 && details && typeof details === "object" && !Array.isArray(details);
	return {
		status,
		body: { error: { code, message, ...(fields.length ? { fields } : {}), ...(shown ? { details } : {}) } }
	};
}

function fieldsMessage(err: any, fields: { field: string }[]) {
	if (err?.type === "VALIDATION_ERROR" && fields.length)
		return `invalid parameters: ${[...new Set(fields.map(f => f.field))].join(", ")}`;
	return String(err?.message || "error");
}
