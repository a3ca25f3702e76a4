// What the AI benches need on a fresh platform: a registered owner, the fake upstream as a provider (its key a
// secret), two deployments (plain and streamed answers), and an API key for /v1. Shared by ai.ts and soak.ts.

export async function api(
	base: string,
	method: string,
	p: string,
	token: string | undefined,
	org: string | undefined,
	body?: unknown
) {
	const r = await fetch(`${base}${p}`, {
		method,
		headers: {
			...(token ? { authorization: `Bearer ${token}` } : {}),
			...(org ? { "x-organization-id": org } : {}),
			...(body ? { "content-type": "application/json" } : {})
		},
		body: body ? JSON.stringify(body) : undefined
	});
	const json: any = await r.json();
	if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(json)}`);
	return json;
}

export interface Owner {
	key: string; // an API key for /v1
	token: string; // the owner's access token, for /api
	org: string;
}

// Registers an owner, stores the upstream key as a secret, configures provider and deployment, returns an API key.
export async function configure(base: string, upstream: string): Promise<string> {
	return (await configureOwner(base, upstream)).key;
}

export async function configureOwner(base: string, upstream: string): Promise<Owner> {
	for (let i = 0; i < 150; i++) {
		const ready = await fetch(`${base}/api/health/ready`)
			.then(r => r.json())
			.catch(() => ({}));
		if (
			["auth", "secrets", "ai"].every(s => ready.services?.includes(s)) &&
			(await fetch(`${base}/api/ai/models`)
				.then(r => r.status)
				.catch(() => 0)) === 401
		)
			break;
		await new Promise(r => setTimeout(r, 200));
	}
	const owner = await api(base, "POST", "/api/auth/register", undefined, undefined, {
		email: `bench-${Date.now()}@example.com`,
		password: "correct horse battery",
		name: "Bench"
	});
	const t = owner.accessToken,
		o = owner.organization.id;
	await api(base, "POST", "/api/secrets", t, o, {
		environment: "production",
		name: "UPSTREAM",
		value: "sk-bench-upstream"
	});
	const provider = await api(base, "POST", "/api/ai/providers", t, o, {
		name: "fake",
		base_url: upstream,
		api_key_secret: "UPSTREAM"
	});
	await api(base, "POST", "/api/ai/deployments", t, o, {
		provider_id: provider.id,
		name: "bench-model",
		provider_model: "bench-upstream"
	});
	await api(base, "POST", "/api/ai/deployments", t, o, {
		provider_id: provider.id,
		name: "bench-stream-model",
		provider_model: "bench-stream"
	});
	const key = (await api(base, "POST", "/api/auth/api-keys", t, o, { name: "bench" })).key;
	return { key, token: t, org: o };
}
