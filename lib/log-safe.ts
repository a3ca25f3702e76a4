// Text that came from a client (a path, a header, an error message quoting input) as it may appear in a log line:
// control characters, ANSI escapes, Unicode line breaks and bidi overrides are written as escapes, so no input can
// start a forged line, recolour or clear an operator's terminal, or reorder what is shown.
import util from "util";
import { Loggers } from "moleculer";

type Bindings = Parameters<InstanceType<typeof Loggers.Console>["getLogHandler"]>[0];

// eslint-disable-next-line no-control-regex -- control characters are exactly what this escapes
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

function escape(text: string): string {
	return text.replace(UNSAFE, c => {
		if (NAMED[c]) return NAMED[c];
		const code = c.charCodeAt(0);
		return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
	});
}

// One value from a client, escaped and cut to `max` characters.
export function logSafe(value: unknown, max = 500): string {
	const text = typeof value === "string" ? value : String(value);
	return escape(text.length > max ? `${text.slice(0, max)}…` : text);
}

// An error keeps its stack frames on their own lines (each starts with spaces, so none reads as a log entry); its
// message, which often quotes input, is escaped.
function safeError(err: Error): Error {
	const head = `${err.name}: ${err.message}`;
	const frames = typeof err.stack === "string" && err.stack.startsWith(head) ? err.stack.slice(head.length) : "";
	const copy = Object.assign(Object.create(Object.getPrototypeOf(err)), err) as Error;
	Object.defineProperty(copy, "message", { value: escape(err.message), enumerable: false });
	Object.defineProperty(copy, "stack", { value: `${err.name}: ${copy.message}${frames}`, enumerable: false });
	return copy;
}

// Log lines written once per turn of the event loop: a write to a pipe or a file is synchronous in Node, one system
// call per line (a busy gateway writes an access line per request: the log's share of its CPU went from 3.5% to
// 2.1%; bench/README.md). Whatever is pending when the process exits, however it exits, is written then.
class LineBuffer {
	private pending: string[] = [];
	private scheduled = false;

	constructor(private stream: NodeJS.WriteStream) {
		process.once("exit", () => this.flush());
	}

	push(line: string) {
		this.pending.push(line);
		if (this.scheduled) return;
		this.scheduled = true;
		setImmediate(() => this.flush());
	}

	flush() {
		this.scheduled = false;
		if (!this.pending.length) return;
		const text = this.pending.join("");
		this.pending = [];
		this.stream.write(text);
	}
}

let outputs: { out: LineBuffer; err: LineBuffer } | undefined;

type Options = ConstructorParameters<typeof Loggers.Console>[0] & {
	// Where lines go instead (each as it is logged, unbuffered): tests read what the platform logs.
	write?: (line: string, stream: "stdout" | "stderr") => void;
};

// The platform's console logger: every string argument of every log call is escaped, whoever logs it (our
// services, moleculer-web, Moleculer itself at debug level), so no code path has to remember to. Objects are
// printed by util.inspect, which escapes the strings inside them already. Lines go to stdout (errors and warnings
// to stderr) as Moleculer's console logger writes them, buffered per event-loop turn.
export class SafeConsoleLogger extends Loggers.Console {
	private write?: Options["write"];

	constructor(opts: Options) {
		const { write, ...rest } = opts;
		super(rest);
		this.write = write;
	}

	getLogHandler(bindings: Bindings) {
		const level = bindings ? this.getLogLevel(bindings.mod) : null;
		if (!level) return null;
		const levels = Loggers.LEVELS as string[];
		const max = levels.indexOf(level);
		const format = this.getFormatter(bindings);
		const inspect = { colors: Boolean(this.opts.colors) };
		outputs ??= { out: new LineBuffer(process.stdout), err: new LineBuffer(process.stderr) };
		const { out, err } = outputs;
		const write = this.write;
		return (type: any, args: unknown[]) => {
			if (levels.indexOf(type) > max) return;
			const safe = args.map(a => (typeof a === "string" ? escape(a) : a instanceof Error ? safeError(a) : a));
			const line = util.formatWithOptions(inspect, ...(format(type, safe) as unknown[])) + "\n";
			const toErr = type === "fatal" || type === "error" || type === "warn";
			if (write) write(line, toErr ? "stderr" : "stdout");
			else (toErr ? err : out).push(line);
		};
	}
}
