// The one error shape clients see ({ error: { code, message, fields? } }) and its OpenAI-shaped twin on /v1: status,
// code and message for each kind of failure, and nothing internal in a 5xx. Pure logic: no infrastructure.
import { Errors } from "moleculer";
import { formatError } from "../../services/gateway/errors";
import { openAiError } from "../../services/ai/ai.routes";

const validation = () =>
	new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
		{ type: "required", field: "name", message: "The 'name' field is required." },
		{ type: "stringMin", field: "name", message: "too short" },
		{ type: "uuid", field: "team_id", message: "The 'team_id' field must be a valid UUID." }
	]);

describe("formatError: the platform's error shape", () => {
	test("invalid parameters are a 422 naming each field once, with the validator's messages per field", () => {
		const { status, body } = formatError(validation());
		expect(status).toBe(422);
		expect(body.error.code).toBe("VALIDATION_ERROR");
		expect(body.error.message).toBe("invalid parameters: name, team_id");
		expect(body.error.fields).toEqual([
			{ field: "name", message: "The 'name' field is required." },
			{ field: "name", message: "too short" },
			{ field: "team_id", message: "The 'team_id' field must be a valid UUID." }
		]);
	});

	test("a client error keeps its status, type and message", () => {
		const err = new Errors.MoleculerClientError("secret not found", 404, "NOT_FOUND");
		expect(formatError(err)).toEqual({
			status: 404,
			body: { error: { code: "NOT_FOUND", message: "secret not found" } }
		});
	});

	test("a client error's details (which budget refused) reach the client; a server error's never do", () => {
		const budget = { id: "b1", name: "Team budget", limit: 10, used: 10 };
		const refused = new Errors.MoleculerClientError("budget exceeded", 402, "BUDGET_EXCEEDED", {
			retryAfter: 60,
			details: { budget }
		});
		expect(formatError(refused).body.error).toEqual({
			code: "BUDGET_EXCEEDED",
			message: "budget exceeded",
			details: { budget }
		});
		const bug = new Errors.MoleculerError("boom", 500, "BUG", { details: { sql: "SELECT secret" } });
		expect(formatError(bug).body.error).not.toHaveProperty("details");
	});

	test("a bug's message (SQL, hosts, client text) never leaves: 500 internal error", () => {
		const err = new Error('duplicate key value violates unique constraint "users_email_key" at db.internal:5432');
		expect(formatError(err)).toEqual({
			status: 500,
			body: { error: { code: "INTERNAL_ERROR", message: "internal error" } }
		});
		const typed = new Errors.MoleculerServerError("connect ECONNREFUSED 10.1.2.3:5432", 500, "DB_DOWN");
		expect(formatError(typed).body.error.message).toBe("internal error");
	});

	test("an upstream failure explained by the platform keeps its explanation", () => {
		const err = new Errors.MoleculerServerError(
			"upstream refused the request (400): bad model",
			502,
			"UPSTREAM_FAILED"
		);
		expect(formatError(err)).toEqual({
			status: 502,
			body: { error: { code: "UPSTREAM_FAILED", message: "upstream refused the request (400): bad model" } }
		});
	});

	test("a dependency down or too slow is a 503 to retry, whatever Moleculer called it", () => {
		const down = [
			new Errors.ServiceNotAvailableError({ action: "secrets.resolve", nodeID: "node-7" }),
			new Errors.RequestTimeoutError({ action: "auth.resolve", nodeID: "node-7" }),
			new Errors.QueueIsFullError({ action: "ai.complete", nodeID: "node-7", size: 100, limit: 100 })
		];
		for (const err of down) {
			const { status, body } = formatError(err);
			expect([status, body.error.code]).toEqual([503, "SERVICE_UNAVAILABLE"]);
			expect(body.error.message).not.toContain("node-7");
		}
	});

	test("an unknown action is a plain 404, without the action's internal name", () => {
		const { status, body } = formatError(new Errors.ServiceNotFoundError({ action: "secrets.internalRotate" }));
		expect([status, body.error.code]).toEqual([404, "NOT_FOUND"]);
		expect(JSON.stringify(body)).not.toContain("internalRotate");
	});

	test("body parser failures: malformed JSON 400, too deep 400, too large 413, unknown encoding 415, broken gzip 400", () => {
		const cases: [object, number, string][] = [
			[{ type: "entity.parse.failed" }, 400, "MALFORMED_JSON"],
			[{ type: "entity.too.deep" }, 400, "JSON_TOO_DEEP"],
			[{ type: "entity.too.large" }, 413, "PAYLOAD_TOO_LARGE"],
			[{ type: "encoding.unsupported" }, 415, "UNSUPPORTED_ENCODING"],
			[{ code: "Z_DATA_ERROR", message: "incorrect header check" }, 400, "MALFORMED_BODY"]
		];
		for (const [err, status, code] of cases)
			expect([formatError(err).status, formatError(err).body.error.code]).toEqual([status, code]);
	});
});

describe("openAiError: /v1 errors in OpenAI's shape", () => {
	test("invalid parameters are a 400 invalid_request_error naming the first field as param", () => {
		expect(openAiError(validation())).toEqual({
			status: 400,
			body: {
				error: {
					message: "invalid parameters: name, team_id",
					type: "invalid_request_error",
					param: "name",
					code: null
				}
			}
		});
	});

	test.each([
		[401, "UNAUTHORIZED", "invalid_request_error", "invalid_api_key"],
		[403, "FORBIDDEN", "invalid_request_error", "permission_denied"],
		[404, "NOT_FOUND", "invalid_request_error", "not_found"],
		[429, "RATE_LIMITED", "rate_limit_error", "rate_limit_exceeded"]
	])("HTTP %i (%s) is type %s, code %s", (status, type, oaType, oaCode) => {
		const r = openAiError(new Errors.MoleculerClientError("refused", status, type));
		expect(r).toEqual({ status, body: { error: { message: "refused", type: oaType, param: null, code: oaCode } } });
	});

	test("an unknown model names the model parameter, as OpenAI's API does", () => {
		const r = openAiError(new Errors.MoleculerClientError("model 'gpt-x' not found", 404, "MODEL_NOT_FOUND"));
		expect(r.body).toEqual({
			error: {
				message: "model 'gpt-x' not found",
				type: "invalid_request_error",
				param: "model",
				code: "model_not_found"
			}
		});
	});

	test("server failures are api_error with the platform's generic message", () => {
		const r = openAiError(new Error("TypeError: cannot read properties of undefined (reading 'rows')"));
		expect(r).toEqual({
			status: 500,
			body: { error: { message: "internal error", type: "api_error", param: null, code: null } }
		});
		expect(openAiError(new Errors.ServiceNotAvailableError({ action: "ai.complete" })).status).toBe(503);
	});
});
