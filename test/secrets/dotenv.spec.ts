// .env import/export (services/secrets/dotenv.ts): values are read by dotenv, the serializer writes what dotenv reads
// back unchanged, and anything dotenv would silently drop or cut is refused with its line. No infrastructure.
import dotenv from "dotenv";
import { parseDotenv, serializeDotenv } from "../../services/secrets/dotenv";

const TRICKY: Record<string, string> = {
	PLAIN: "https://api.example.com/v1?a=b&c=d",
	EMPTY: "",
	SPACES: "  leading and trailing  ",
	HASH: "abc#123 # not a comment",
	EQUALS: "a=b==c",
	DOUBLE_QUOTES: 'say "hi"',
	SINGLE_QUOTE: "it's",
	BOTH_QUOTES: `it's "quoted"`,
	ALL_QUOTES: 'it\'s "quoted" `too` \\',
	NEWLINES: "line1\nline2\n\nline4\n",
	CRLF: "windows\r\nline",
	BACKSLASHES: "C:\\path\\to\\n\\file",
	TRAILING_BACKSLASH: "ends with \\",
	UNICODE: "héllo wörld ✓ 日本語 🚀",
	PEM: "-----BEGIN KEY-----\nMIIB'x\"y\n-----END KEY-----",
	QUOTED_LOOKING: "'already quoted'",
	"dotted.name-1": "x"
};

describe(".env files", () => {
	test("export reads back unchanged, through parseDotenv and through dotenv itself", () => {
		const entries = Object.entries(TRICKY).map(([name, value]) => ({ name, value }));
		const text = serializeDotenv(entries);
		expect(parseDotenv(text)).toEqual({ entries, errors: [] });
		expect(dotenv.parse(text)).toEqual(TRICKY);
	});

	test("reads what dotenv reads: export, comments, quotes, multi-line values", () => {
		const text = [
			"# a comment",
			"export API_URL=https://api.example.com  # trailing comment",
			'DQ="line1\\nline2"',
			"SQ='a \"b\" #c'",
			"MULTI='first",
			"second'",
			"BT=`it's`",
			"EMPTY=",
			""
		].join("\r\n");
		const { entries, errors } = parseDotenv(text);
		expect(errors).toEqual([]);
		expect(Object.fromEntries(entries.map(e => [e.name, e.value]))).toEqual(dotenv.parse(text));
		expect(entries.map(e => e.value)).toEqual([
			"https://api.example.com",
			"line1\nline2",
			'a "b" #c',
			"first\nsecond",
			"it's",
			""
		]);
	});

	test("what dotenv would skip, cut or overwrite silently is refused with its line and name", () => {
		const cases: [string, number, RegExp][] = [
			["A=1\nnot a line\n", 2, /expected NAME=value/],
			["A=1\n1BAD=x\n", 2, /1BAD: a name starts with a letter/],
			[`A=1\n${"N".repeat(201)}=x\n`, 2, /at most 200/],
			["A=1\nB='open\nC=2\n", 2, /B: the ' quote is not closed/],
			['A="x\n', 1, /A: the " quote is not closed/],
			["PASSWORD=abc#123\n", 1, /PASSWORD: '#' starts a comment/],
			["A=1\nB=2\nA=3\n", 3, /A is already set on line 1/],
			["A='one 'two\nthree'\n", 1, /A: the quoted value cannot be read/]
		];
		for (const [text, line, message] of cases) {
			const { errors } = parseDotenv(text);
			expect([text, errors[0]?.line]).toEqual([text, line]);
			expect(errors[0].message).toMatch(message);
		}
	});

	test("export refuses a name or value .env cannot carry, naming it", () => {
		expect(() => serializeDotenv([{ name: "a/b", value: "x" }])).toThrow(/a\/b: .env names allow/);
		for (const value of ["'\"`\n", "'\"`\r", "'\"` #"])
			expect(() => serializeDotenv([{ name: "MIXED", value }])).toThrow(/MIXED: .env cannot carry this value/);
	});
});
