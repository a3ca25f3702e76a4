// CSV exports: quoting by RFC 4180, objects as JSON, and cells a spreadsheet would run as formulas made inert.
import { csvField, toCsv } from "../../lib/csv";

test("fields with commas, quotes or line breaks are quoted; quotes doubled", () => {
	expect(csvField("plain")).toBe("plain");
	expect(csvField('say "hi", twice')).toBe('"say ""hi"", twice"');
	expect(csvField("two\nlines")).toBe('"two\nlines"');
	expect(csvField(null)).toBe("");
	expect(csvField(undefined)).toBe("");
	expect(csvField({ a: 1 })).toBe('"{""a"":1}"');
	expect(csvField(new Date("2026-01-02T03:04:05.000Z"))).toBe("2026-01-02T03:04:05.000Z");
});

test("a cell starting like a formula is prefixed so a spreadsheet shows it as text", () => {
	for (const s of ["=1+1", "+SUM(A1)", "-2", "@cmd"]) expect(csvField(s)).toBe(`'${s}`);
	expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
});

test("a table: header, then one CRLF-terminated line per row in column order", () => {
	expect(toCsv(["b", "a"], [{ a: 1, b: "x" }, { a: 2 }])).toBe("b,a\r\nx,1\r\n,2\r\n");
});
