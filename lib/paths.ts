// The project's root, where package.json is: the same from the sources (lib/) and from their compiled copy
// (dist/lib/, `npm run build:server`). What the code reads beside itself but never compiles (migrations/, public/,
// package.json) is found from here, not from the running file's folder.
import fs from "fs";
import path from "path";

function findRoot(from: string): string {
	for (let dir = from; ; dir = path.dirname(dir)) {
		if (fs.existsSync(path.join(dir, "package.json"))) return dir;
		if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
	}
}

export const ROOT = findRoot(__dirname);
