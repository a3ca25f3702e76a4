// AI providers: any OpenAI-compatible endpoint. The API key is named, not stored: it lives in the secrets service,
// and saving a provider grants the AI service read access to exactly that secret.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { invalid } from "../../lib/errors";
import { AiConfigMixin } from "./config.mixin";

const AiProvidersService: ServiceSchema = {
	name: "ai-providers",
	mixins: [
		AiConfigMixin(
			"ai_providers",
			["name", "base_url", "api_key_secret", "api_key_environment", "timeout_ms", "headers", "enabled"],
			{
				name: { type: "string", min: 1, max: 100, trim: true },
				base_url: { type: "url" },
				api_key_secret: { type: "string", pattern: /^[A-Za-z_][A-Za-z0-9_./-]{0,199}$/, optional: true, nullable: true },
				api_key_environment: { type: "string", pattern: /^[a-z][a-z0-9-]{0,39}$/, optional: true },
				timeout_ms: { type: "number", integer: true, min: 100, max: 600000, optional: true, convert: true },
				headers: { type: "record", key: { type: "string", max: 100 }, value: { type: "string", max: 2000 }, optional: true },
				enabled: { type: "boolean", optional: true }
			},
			"/ai/providers"
		)
	],

	hooks: {
		before: {
			create: "checkProvider",
			update: "checkProvider"
		}
	},

	methods: {
		async checkProvider(this: any, ctx: Context<any>) {
			const p = ctx.params;
			// Credentials come from the secrets service only, never from a header typed in here.
			if (p.headers && Object.keys(p.headers).some(h => /^(authorization|api-key|x-api-key)$/i.test(h)))
				throw invalid("headers", "put the API key in a secret and name it in api_key_secret");
			if (p.api_key_secret) {
				const environment = p.api_key_environment ?? "production";
				const found: any[] = await ctx.call("secrets.list", { environment, search: p.api_key_secret });
				const secret = found.find(s => s.name === p.api_key_secret && !s.project_id);
				if (!secret) throw invalid("api_key_secret", `no secret named ${p.api_key_secret} in ${environment}`);
				const grants: any[] = await ctx.call("secrets.grants", { secretId: secret.id });
				if (!grants.some(g => g.grantee_type === "service" && g.grantee_id === "ai" && !g.expires_at))
					await ctx.call("secrets.grant", { secretId: secret.id, permission: "read", granteeType: "service", granteeId: "ai" });
			}
		}
	}
};

export default AiProvidersService;
