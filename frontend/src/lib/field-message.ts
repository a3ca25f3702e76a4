// A validator message as a form shows it next to its field (no imports: the server's tests check it too).

// "The 'expiresInDays' field must be a number." -> "Expires in days must be a number."; a field the service labels
// is quoted by its label, the form's own words: "The 'Cache lifetime (seconds)' field must be …".
export function readableFieldMessage(field: string, message: string): string {
	const quoted = /^The '(.+?)' field /.exec(message)?.[1];
	const label =
		quoted && quoted !== field
			? quoted
			: field
					.replace(/([a-z])([A-Z])/g, "$1 $2")
					.replace(/[._]/g, " ")
					.toLowerCase();
	const text = message.replace(/^The '(.+?)' field /, `${label.charAt(0).toUpperCase()}${label.slice(1)} `);
	return text
		.replace("must be greater than or equal to", "must be at least")
		.replace("must be less than or equal to", "must be at most")
		.replace(/length must be at least 1 characters long\.?/, "is required.")
		.replace(/length must be at least (\d+) characters long/, "must be at least $1 characters long")
		.replace(/length must be at most (\d+) characters long/, "must be at most $1 characters long");
}
