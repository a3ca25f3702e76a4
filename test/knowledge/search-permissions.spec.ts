// Permission-filtered search: a randomised organization (a category tree, grants to teams and roles, principals of
// every role in random teams, published articles everywhere) searched by each principal. A result or snippet from a
// category the principal may not read never appears, and k readable results come back even when most matches are
// forbidden (the permission join is inside the ranked query, not applied after its LIMIT). The expected access is
// computed here from the rules as the README states them, independently of the SQL.
import { KNOWLEDGE_FILES, knowledgeWorld, WITH_EMBEDDINGS } from "./setup";
import { describeWith, DATABASE_SERVICES } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { ROLES, roleRank, type AuthInfo, type Role } from "../../lib/permissions";

// mulberry32: a small seeded generator, so a failing run can be repeated with its seed.
function rng(seed: number) {
	return () => {
		seed |= 0;
		seed = (seed + 0x6d2b79f5) | 0;
		let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

type Grant = { team_id?: string; role?: Role; access: "read" | "write" };
type Cat = { id: string; parent: string | null; grants: Grant[] };

// Full text alone, and hybrid with the embeddings module (whose vector neighbours are never filtered after the fact).
describeWith(DATABASE_SERVICES).each([
	["full text", KNOWLEDGE_FILES],
	["hybrid", WITH_EMBEDDINGS]
])("knowledge search respects category permissions (randomised, %s)", (mode, files) => {
	const seed = Number(process.env.KB_SEED ?? Date.now() % 1_000_000);
	const random = rng(seed);
	const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
	let w: Awaited<ReturnType<typeof knowledgeWorld>>;

	beforeAll(async () => {
		w = await knowledgeWorld({}, files);
	});
	afterAll(() => w?.stop());

	test(`no forbidden article or snippet, k results when readable (seed ${seed})`, async () => {
		const org = await w.organization("acme");
		const owner = await w.principal(org, "owner");
		const teams = await Promise.all(["red", "green", "blue", "gold"].map(n => w.team(org, n)));

		// 24 categories, each under a random earlier one (or a root); about a third restricted.
		const cats: Cat[] = [];
		for (let i = 0; i < 24; i++) {
			const parent = i < 3 || random() < 0.2 ? null : pick(cats).id;
			const c = await w.call("knowledge-categories.create", { name: `c${i}`, parent_id: parent }, owner);
			const grants: Grant[] = [];
			if (random() < 0.35) {
				const n = 1 + Math.floor(random() * 2);
				const who = new Set<string>();
				for (let g = 0; g < n; g++) {
					const grant: Grant =
						random() < 0.6
							? { team_id: pick(teams), access: pick(["read", "write"] as const) }
							: {
									role: pick(["viewer", "member", "admin"] as const),
									access: pick(["read", "write"] as const)
								};
					const key = grant.team_id ?? grant.role!;
					if (!who.has(key)) grants.push(grant);
					who.add(key);
				}
				await w.call("knowledge-categories.setGrants", { id: c.id, grants }, owner);
			}
			cats.push({ id: c.id, parent, grants });
		}

		// 3 articles per category, all matching "zebra", each with its own marker word.
		const articles: { id: string; category: string; marker: string }[] = [];
		for (const c of cats)
			for (let j = 0; j < 3; j++) {
				const marker = `m${articles.length}x`;
				const a = await w.call(
					"knowledge-articles.create",
					{
						category_id: c.id,
						title: `Zebra notes ${marker}`,
						body: `The zebra crossing ${marker} is documented here. ${"Filler words. ".repeat(j * 5)}`,
						status: "published"
					},
					owner
				);
				articles.push({ id: a.id, category: c.id, marker });
			}
		await waitUntil(
			"every article indexed",
			async () => (await w.sql.query("SELECT count(*)::int AS n FROM kb_search_index")).rows[0].n,
			n => n === articles.length
		);
		if (mode === "hybrid") await w.embedded(org, articles.length);

		const byId = new Map(cats.map(c => [c.id, c]));
		const governing = (c: Cat): Cat | null =>
			c.grants.length ? c : c.parent ? governing(byId.get(c.parent)!) : null;
		const mayRead = (role: Role, inTeams: string[], c: Cat) => {
			if (roleRank(role) >= roleRank("admin")) return true;
			const gov = governing(c);
			return (
				!gov ||
				gov.grants.some(g => (g.team_id ? inTeams.includes(g.team_id) : roleRank(role) >= roleRank(g.role!)))
			);
		};

		const people: { auth: AuthInfo; role: Role; teams: string[] }[] = [];
		for (let i = 0; i < 14; i++) {
			const role = i < ROLES.length ? ROLES[i] : pick(["member", "viewer"] as const);
			const mine = teams.filter(() => random() < 0.3);
			people.push({ auth: await w.principal(org, role, mine), role, teams: mine });
		}

		let sawRestricted = false;
		for (const p of people) {
			const readable = new Set(
				articles.filter(a => mayRead(p.role, p.teams, byId.get(a.category)!)).map(a => a.id)
			);
			if (readable.size < articles.length) sawRestricted = true;
			const what = `${p.role} in ${p.teams.length} team(s), seed ${seed}`;
			for (const k of [3, 50]) {
				const found = await w.call("knowledge.search", { query: "zebra", k }, p.auth);
				expect(found.mode).toBe(mode === "hybrid" ? "hybrid" : "fulltext");
				const { results } = found;
				const ids: string[] = results.map((r: any) => r.id);
				expect({ what, forbidden: ids.filter(id => !readable.has(id)) }).toEqual({ what, forbidden: [] });
				expect({ what, k, n: ids.length }).toEqual({ what, k, n: Math.min(k, readable.size) });
				for (const r of results) {
					const a = articles.find(x => x.id === r.id)!;
					// The snippet is the article's own text: its marker, no other article's.
					const markers = [...r.snippet.matchAll(/m\d+x/g)].map(m => m[0]);
					expect(markers).toEqual([a.marker]);
				}
			}
			// Lists and reads follow the same rule.
			const listed = await w.call("knowledge-articles.list", { pageSize: 100 }, p.auth);
			expect(listed.rows.map((r: any) => r.id).sort()).toEqual([...readable].sort());
			const visible = await w.call<any[]>("knowledge-categories.list", {}, p.auth);
			expect(visible.map(c => c.id).sort()).toEqual(
				cats
					.filter(c => mayRead(p.role, p.teams, c))
					.map(c => c.id)
					.sort()
			);
			const other = articles.find(a => !readable.has(a.id));
			if (other)
				await expect(w.call("knowledge-articles.get", { id: other.id }, p.auth)).rejects.toMatchObject({
					code: 404
				});
			// A forbidden article's own marker never finds it; a readable one's finds it first (hybrid search adds
			// readable vector neighbours after it).
			const probe = pick(articles);
			const { results } = await w.call("knowledge.search", { query: probe.marker }, p.auth);
			const probed = results.map((r: any) => r.id);
			if (readable.has(probe.id)) expect(probed[0]).toBe(probe.id);
			else expect(probed).not.toContain(probe.id);
			expect(probed.filter((id: string) => !readable.has(id))).toEqual([]);
			if (mode !== "hybrid") expect(probed.length).toBe(readable.has(probe.id) ? 1 : 0);
			// Searching within a category keeps both rules.
			const within = pick(cats);
			const sub = new Set<string>();
			const collect = (id: string) => {
				sub.add(id);
				cats.filter(c => c.parent === id).forEach(c => collect(c.id));
			};
			collect(within.id);
			const scoped = await w.call("knowledge.search", { query: "zebra", k: 50, categoryId: within.id }, p.auth);
			for (const r of scoped.results) {
				expect(readable.has(r.id)).toBe(true);
				expect(sub.has(r.category_id)).toBe(true);
			}
			const expected = articles.filter(a => readable.has(a.id) && sub.has(a.category)).length;
			expect(scoped.results.length).toBe(Math.min(50, expected));
		}
		expect(sawRestricted).toBe(true);
	});

	test("k results come back when almost every match is forbidden", async () => {
		const org = await w.organization("mostly-closed");
		const owner = await w.principal(org, "owner");
		const secret = await w.team(org, "secret");
		const viewer = await w.principal(org, "viewer");
		const closed = await w.call("knowledge-categories.create", { name: "closed" }, owner);
		await w.call(
			"knowledge-categories.setGrants",
			{ id: closed.id, grants: [{ team_id: secret, access: "read" }] },
			owner
		);
		const open = await w.call("knowledge-categories.create", { name: "open" }, owner);
		// 60 forbidden articles that rank higher (the word three times) than the 5 readable ones.
		const ids: Record<string, string[]> = { closed: [], open: [] };
		for (let i = 0; i < 65; i++) {
			const inClosed = i < 60;
			const a = await w.call(
				"knowledge-articles.create",
				{
					category_id: inClosed ? closed.id : open.id,
					title: `Llama ${i}`,
					body: inClosed ? "llama llama llama" : "a llama",
					status: "published"
				},
				owner
			);
			ids[inClosed ? "closed" : "open"].push(a.id);
		}
		await waitUntil(
			"all indexed",
			async () =>
				(await w.sql.query("SELECT count(*)::int AS n FROM kb_search_index WHERE organization_id = $1", [org]))
					.rows[0].n,
			n => n === 65
		);
		if (mode === "hybrid") await w.embedded(org, 65);
		const { results } = await w.call("knowledge.search", { query: "llama", k: 5 }, viewer);
		expect(results.map((r: any) => r.id).sort()).toEqual([...ids.open].sort());
		// The owner sees the higher-ranked closed ones first.
		const top = await w.call("knowledge.search", { query: "llama", k: 5 }, owner);
		expect(top.results.every((r: any) => ids.closed.includes(r.id))).toBe(true);
		// The team's member reads the closed category too.
		const insider = await w.principal(org, "viewer", [secret]);
		expect((await w.call("knowledge.search", { query: "llama", k: 50 }, insider)).results).toHaveLength(50);
	});
});
