// Client-facing errors: one place that says which status and code each kind of failure gets.
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerError } = Errors;

export const unauthorized = (message = "authentication required") => new MoleculerClientError(message, 401, "UNAUTHORIZED");
export const forbidden = (message = "not allowed") => new MoleculerClientError(message, 403, "FORBIDDEN");
export const notFound = (what: string) => new MoleculerClientError(`${what} not found`, 404, "NOT_FOUND");
export const conflict = (message: string) => new MoleculerClientError(message, 409, "CONFLICT");
export const unavailable = (message: string) => new MoleculerError(message, 503, "SERVICE_UNAVAILABLE");

// A 422 that names the offending field, in the same shape as the validator's errors.
export const invalid = (field: string, message: string) =>
	new Errors.ValidationError(`${field}: ${message}`, "VALIDATION_ERROR", [{ type: "invalid", field, message }]);

// PostgreSQL constraint violations become client errors instead of 500s.
export function fromDbError(err: any, what = "record"): Error {
	if (err && err.code === "23505") return conflict(`${what} already exists`);
	if (err && err.code === "23503") return notFound(`referenced ${what}`);
	if (err && err.code === "22P02") return invalid("id", "is not a valid identifier");
	return err;
}
