// The template language and typed variables, without infrastructure: liquidjs in strict, own-property-only mode
// with no file system, and the checks a render's variables pass first.
import { checkVariablesUsed, renderMessages, parseMessages, type ChatMessage } from "../../services/prompts/render";
import { bindVariables, checkDefinitions, type VariableDef } from "../../services/prompts/variables";

let n = 0;
const partials: Record<string, string> = { footer: "-- {{ sign }}", loop: "{% render 'loop' %}" };
const render = (content: string, variables: Record<string, unknown> = {}) =>
	renderMessages(`v-${++n}`, [{ role: "user", content }], variables, async name => partials[name]).then(
		m => m[0].content
	);
const refused = (content: string, variables: Record<string, unknown> = {}) =>
	expect(render(content, variables)).rejects.toMatchObject({ code: 422, data: [{ field: "messages[0].content" }] });

describe("rendering", () => {
	test("conditionals, loops, filters and partials by name", async () => {
		const out = await render(
			"{% if admin %}Hi {{ name | upcase }}{% endif %}:{% for f in files %} {{ f }}{% endfor %} {% render 'footer', sign: name %}",
			{ admin: true, name: "ada", files: ["a.ts", "b.ts"] }
		);
		expect(out).toBe("Hi ADA: a.ts b.ts -- ada");
	});

	test("a template reaches nothing but its variables: no prototype, constructor or undefined name", async () => {
		await refused("{{ constructor }}");
		await refused("{{ x.constructor.constructor }}", { x: { a: 1 } });
		await refused("{{ __proto__ }}");
		await refused("{{ x.__proto__.polluted }}", { x: {} });
		await refused("{{ x.toString }}", { x: {} });
		await refused("{{ s.constructor.name }}", { s: "text" });
		await refused("{{ process.env }}");
		await refused("{{ global }}{{ require }}");
		await refused("{{ x | no_such_filter }}".replace("x", "'a'"));
	});

	test("prototype pollution through variables or assign changes nothing outside the render", async () => {
		const hostile = JSON.parse(
			'{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}'
		);
		await render("{% assign __proto__ = 'x' %}{{ o.constructor.prototype.polluted }}", { o: hostile }).catch(
			() => ""
		);
		expect(({} as any).polluted).toBeUndefined();
		expect(Object.prototype).not.toHaveProperty("polluted");
	});

	test("no file includes: paths, parent directories and unknown names are not found", async () => {
		for (const t of [
			"{% include '/etc/passwd' %}",
			"{% render '../../package.json' %}",
			"{% include 'package.json' %}",
			"{% layout '/etc/hosts' %}x",
			"{% render 'https://example.com/x' %}",
			"{% render 'no-such-template' %}"
		])
			await refused(t);
	});

	test("bounded: a huge loop, exponential growth and recursive partials stop with a 422", async () => {
		await refused("{% for i in (1..100000000) %}a{% endfor %}");
		await refused(
			"{% assign a = 'x' %}{% for i in (1..40) %}{% assign a = a | append: a %}{% endfor %}{{ a | size }}"
		);
		await refused("{% render 'loop' %}");
	});

	test("a syntax error is a 422 naming the message when the version is parsed", () => {
		const messages: ChatMessage[] = [
			{ role: "system", content: "fine" },
			{ role: "user", content: "{% if %}" }
		];
		expect(() => parseMessages(messages)).toThrow(
			expect.objectContaining({ code: 422, data: [expect.objectContaining({ field: "messages[1].content" })] })
		);
	});
});

describe("variables", () => {
	test("a version must declare every variable its messages read (loops, assigns and captures are its own)", () => {
		const ok: ChatMessage[] = [
			{
				role: "user",
				content:
					"{% for f in files %}{{ forloop.index }}{{ f }}{% endfor %}{% assign u = name | upcase %}{{ u }}{% render 'x', a: name %}"
			}
		];
		expect(() => checkVariablesUsed(ok, ["files", "name"])).not.toThrow();
		expect(() => checkVariablesUsed(ok, ["files"])).toThrow(
			expect.objectContaining({
				code: 422,
				data: [
					expect.objectContaining({ field: "messages[0].content", message: expect.stringContaining("name") })
				]
			})
		);
		for (const hostile of ["{{ constructor }}", "{{ __proto__ }}", "{{ process.env }}"])
			expect(() => checkVariablesUsed([{ role: "user", content: hostile }], [])).toThrow(/does not declare/);
	});

	const defs: VariableDef[] = [
		{ name: "topic", type: "string", maxLength: 10 },
		{ name: "count", type: "number", default: 3 },
		{ name: "strict", type: "boolean", required: false },
		{ name: "tone", type: "enum", values: ["formal", "casual"], default: "casual" },
		{ name: "files", type: "list", maxLength: 2, required: false },
		{ name: "repo", type: "object", required: false }
	];
	const field = (given: Record<string, unknown>) => {
		try {
			bindVariables(defs, given);
		} catch (err: any) {
			return [err.code, err.data[0].field, err.data[0].message];
		}
		return "accepted";
	};

	test("defaults fill in; optional ones are null; values are plain copies", () => {
		const repo = { name: "core" };
		const bound = bindVariables(defs, { topic: "tests", repo });
		expect(bound).toEqual({ topic: "tests", count: 3, strict: null, tone: "casual", files: null, repo });
		expect(bound.repo).not.toBe(repo);
	});

	test("missing, ill-typed, too long and undeclared variables are 422s naming the variable", () => {
		expect(field({})).toEqual([422, "variables.topic", "is required (string)"]);
		expect(field({ topic: 5 })).toEqual([422, "variables.topic", "must be a string"]);
		expect(field({ topic: "x".repeat(11) })).toEqual([422, "variables.topic", "must be at most 10 characters"]);
		expect(field({ topic: "t", count: "3" })).toEqual([422, "variables.count", "must be a number"]);
		expect(field({ topic: "t", strict: "yes" })).toEqual([422, "variables.strict", "must be true or false"]);
		expect(field({ topic: "t", tone: "rude" })).toEqual([422, "variables.tone", "must be one of formal, casual"]);
		expect(field({ topic: "t", files: ["a", "b", "c"] })).toEqual([
			422,
			"variables.files",
			"must have at most 2 items"
		]);
		expect(field({ topic: "t", repo: [] })).toEqual([422, "variables.repo", "must be an object"]);
		expect(field({ topic: "t", other: 1 })).toEqual([422, "variables.other", "is not a variable of this template"]);
	});

	test("declarations are checked when a version is published", () => {
		expect(() => checkDefinitions([{ name: "a", type: "enum" }])).toThrow(/values/);
		expect(() =>
			checkDefinitions([
				{ name: "a", type: "string" },
				{ name: "a", type: "number" }
			])
		).toThrow(/twice/);
		expect(() => checkDefinitions([{ name: "a", type: "number", default: "x" }])).toThrow(
			/default must be a number/
		);
		expect(() => checkDefinitions([{ name: "a", type: "boolean", maxLength: 3 }])).toThrow(/maximum length/);
	});
});
