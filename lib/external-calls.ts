// Actions that reach a paid or side-effecting system outside the platform (an LLM provider, an MCP server, a webhook
// target) declare `external: true` in their schema. The declaration travels with the action to every node, and on
// the caller's node as on the action's own this middleware gives such a call:
// - no retries: a retry after a timeout would send (and pay for) again what the first attempt may still be doing;
// - no transport deadline: whatever a caller, the gateway or a parent context's remaining time would impose, the
//   handler keeps the deadline that fits the work (a provider's timeout, a stream's first-token and idle limits).
// A node that dies meanwhile is still noticed: its heartbeats stop, and its pending calls fail without being resent.
import type { Context } from "moleculer";

type Handler = (ctx: Context) => Promise<unknown>;

export const ExternalCallsMiddleware = {
	name: "ExternalCalls",
	localAction: sendOnce,
	remoteAction: sendOnce
};

// Listed after Retry and Timeout in the broker's middlewares, so it runs before either reads the call's options.
function sendOnce(handler: Handler, action: { external?: boolean }): Handler {
	if (!action.external) return handler;
	return function externalCall(ctx: Context) {
		ctx.options.retries = 0;
		ctx.options.timeout = 0;
		return handler(ctx);
	};
}
