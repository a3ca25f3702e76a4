// Client-facing errors: one place that says which status and code each kind of failure gets.
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerError } = Errors;

export const unauthorized = (message = "authentication required") =>
	new MoleculerClientError(message, 401, "UNAUTHORIZED");
export const forbidden = (message = "not allowed") => new MoleculerClientError(message, 403, "FORBIDDEN");
// `field` names the input a form should show the message next to.
const withField = (field: string | undefined, message: string) => (field ? [{ field, message }] : undefined);
export const notFound = (what: string, field?: string) =>
	new MoleculerClientError(`${what} not found`, 404, "NOT_FOUND", withField(field, `${what} not found`));
export const conflict = (message: string, field?: string) =>
	new MoleculerClientError(message, 409, "CONFLICT", withField(field, message));
// A link or token that existed but no longer works (expired, used): the client should ask for a new one.
export const gone = (message: string) => new MoleculerClientError(message, 410, "GONE");
export const unavailable = (message: string) => new MoleculerError(message, 503, "SERVICE_UNAVAILABLE");
// A call failed because no node serves `action` (its module is not deployed, or stopped): a soft dependency's
// caller answers with its own 503 saying which module is missing.
export const actionMissing = (err: any, action: string): boolean =>
	["SERVICE_NOT_FOUND", "SERVICE_NOT_AVAILABLE"].includes(err?.type) && err?.data?.action === action;

// A status that refuses the request itself (a 4xx other than a timeout or throttling: an unknown name, a missing
// permission, bad input): the same request will be refused again, so retrying it cannot help.
export const isRefusal = (status: unknown): boolean => {
	const code = Number(status);
	return code >= 400 && code < 500 && code !== 408 && code !== 429;
};

// Another module's action, whose absence is a 503 naming it rather than a "service not found". `refused` turns the
// module's refusal of the request (isRefusal) into the caller's own error, e.g. a failure that is not retried.
export async function callModule<T = any>(
	ctx: { call<R, P>(action: string, params: P): Promise<R> },
	action: string,
	params: object,
	refused?: (err: Error) => Error
): Promise<T> {
	try {
		return await ctx.call<T, object>(action, params);
	} catch (err) {
		if (actionMissing(err, action)) throw unavailable(`${action} is not available: its module is not running`);
		if (refused && isRefusal((err as { code?: unknown }).code)) throw refused(err as Error);
		throw err;
	}
}

// A 422 that names the offending field, in the same shape as the validator's errors.
export const invalid = (field: string, message: string) =>
	new Errors.ValidationError(`${field}: ${message}`, "VALIDATION_ERROR", [{ type: "invalid", field, message }]);

// A failure of something outside the platform (an LLM provider, an MCP server, a webhook target) that a service
// reports on purpose: its node is healthy, so the circuit breaker must not count it (nodeFailed). The class name
// is the mark: it is one of the few fields Moleculer carries across the transporter.
export class ExternalFailure extends MoleculerError {}
export const isExternalFailure = (err: unknown) => (err as Error | undefined)?.name === "ExternalFailure";

// The circuit breaker's test: errors that say the node or the transport failed (timeouts, a node gone, a dependency
// of the node down, an internal error). A failure reported about one organization's upstream is not one: counting it
// would let that organization close an action for every other.
export const nodeFailed = (err: any): boolean => !!err && err.code >= 500 && !isExternalFailure(err);

// PostgreSQL's data exceptions (SQLSTATE class 22: a non-UUID for a uuid column, a malformed date, a NUL byte in
// text, a number out of range) are caused by the values sent: a 422 naming the field, with PostgreSQL's reason.
const DATA_EXCEPTION = /^22[0-9A-Z]{3}$/;
function isDataException(err: any): boolean {
	if (!err || err instanceof Errors.MoleculerError) return false;
	return typeof err.code === "string" && DATA_EXCEPTION.test(err.code);
}
function fromDataException(err: any, field?: string): Error {
	const reason = String(err.message ?? "").slice(0, 200);
	return invalid(field ?? err.column ?? "value", `a value does not fit its column (${reason})`);
}

// A unique key refusing a write, in the words of the UI: "a routing rule with this model already exists". `labels`
// are the writable fields' labels (field -> label) and `values` what was written: the fields named are those of the
// key PostgreSQL reports ("Key (organization_id, model, COALESCE(tag, ''::text))=(…)") that the write set. Never the
// values themselves: they may be anything a client sent.
export function duplicate(err: any, entity: string, labels: Record<string, string>, values: Record<string, unknown>) {
	const key = /^Key \((.*)\)=\(/s.exec(String(err?.detail ?? ""))?.[1] ?? "";
	const named = [...new Set(key.match(/[a-z_][a-z0-9_]*/gi) ?? [])].filter(c => c in labels && values[c] != null);
	const article = /^[aeiou]/i.test(entity) ? "an" : "a";
	if (!named.length) return conflict(`${article} ${entity} like this already exists`);
	const words = named.map(c => labels[c].replace(/^[A-Z](?![A-Z])/, ch => ch.toLowerCase()));
	return conflict(`${article} ${entity} with this ${words.join(" and ")} already exists`, named[0]);
}

// PostgreSQL constraint violations and data exceptions become client errors instead of 500s; `field` names the
// input the conflict or bad value is about.
export function fromDbError(err: any, what = "record", field?: string): Error {
	if (err && err.code === "23505") return conflict(`${what} already exists`, field);
	if (err && err.code === "23503") return notFound(`referenced ${what}`);
	if (isDataException(err)) return fromDataException(err, field);
	return err;
}

// A database or broker that cannot be reached is a 503 for the client, never a 500 with driver details.
const DEPENDENCY_CODES = new Set([
	"ECONNREFUSED",
	"ECONNRESET",
	"ETIMEDOUT",
	"EPIPE",
	"57P01",
	"57P02",
	"57P03",
	"08000",
	"08001",
	"08003",
	"08006"
]);
export function mapDependencyError(err: any): Error {
	if (
		err &&
		!(err instanceof Errors.MoleculerError) &&
		(DEPENDENCY_CODES.has(err.code) ||
			/Connection terminated|timeout exceeded when trying to connect/i.test(err.message ?? ""))
	)
		return unavailable("a dependency of this service is unavailable (database)");
	return err;
}

export const DependencyErrorsMiddleware = {
	name: "DependencyErrors",
	localAction(handler: (ctx: any) => Promise<unknown>) {
		return function dependencyErrors(ctx: any) {
			return handler(ctx).catch((err: unknown) => {
				// Any action's raw SQL with a client's value that PostgreSQL refuses: a 422, not a 500.
				throw isDataException(err) ? fromDataException(err) : mapDependencyError(err);
			});
		};
	}
};
