// Components that wrap one control in a FormField (InputField, SelectField) take `style` for the field (its size in
// a form row) and pass every other attribute (class, type, disabled, listeners, data-testid…) to the control.
export function controlAttrs(attrs: Record<string, unknown>): Record<string, unknown> {
	const { style: _style, ...control } = attrs;
	return control;
}
