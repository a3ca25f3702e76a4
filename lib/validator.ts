// fastest-validator with errors that always name their field: an unknown key (strict objects) is reported as
// that key, so a client learns which field to remove, not just that "the object" is wrong.
import { Validators } from "moleculer";

type Check = (params: unknown, opts?: unknown) => true | any[] | Promise<true | any[]>;

function nameFields(errors: any[]) {
	for (const e of errors) if (e.type === "objectStrict" && !e.field) e.field = String(e.actual);
	return errors;
}

export class PlatformValidator extends (Validators as any).Fastest {
	compile(schema: unknown): Check {
		const check: Check = super.compile(schema);
		const wrapped: Check = (params, opts) => {
			const res = check(params, opts);
			if (res instanceof Promise) return res.then(r => (r === true ? r : nameFields(r)));
			return res === true ? res : nameFields(res);
		};
		(wrapped as any).async = (check as any).async;
		return wrapped;
	}
}
