// Organization slugs: readable from the name, unique by a random suffix.
import crypto from "crypto";

export function slugify(name: string): string {
	const base =
		name
			.toLowerCase()
			.replace(/[^a-z0-9]+/g, "-")
			.replace(/^-|-$/g, "")
			.slice(0, 40) || "org";
	return `${base}-${crypto.randomBytes(3).toString("hex")}`;
}
