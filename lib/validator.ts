// fastest-validator with errors that always name their field: an unknown key (strict objects) is reported as
// that key, so a client learns which field to remove, not just that "the object" is wrong.
import { Validators } from "moleculer";

type Check = (params: unknown, opts?: unknown) => true | any[] | Promise<true | any[]>;

// A rule's `label` (the UI's name for the field) replaces the key in its messages; fastest-validator also pins the
// last label it compiled on a strict object's error ("The object 'Cache lifetime' contains forbidden keys"), so that
// error is worded here, naming the key to remove.
function nameFields(errors: any[]) {
	for (const e of errors)
		if (e.type === "objectStrict" && !e.field) {
			e.field = String(e.actual);
			e.message = `The '${e.field}' field is not allowed.`;
			delete e.label;
		}
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
