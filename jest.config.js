/** @type {import('jest').Config} */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test"],
	testMatch: ["**/*.spec.ts"],
	transform: {
		"^.+\\.ts$": [
			"@swc/jest",
			{
				jsc: { parser: { syntax: "typescript" }, target: "es2022" },
				module: { type: "commonjs", ignoreDynamic: true }
			}
		]
	},
	testTimeout: 60000,
	globalSetup: "<rootDir>/test/helpers/global-setup.ts",
	// Cluster tests spawn node processes; each file cleans up its own.
	forceExit: true
};
