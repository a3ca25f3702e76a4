// ESLint (flat config): the recommended rules of @eslint/js, typescript-eslint and eslint-plugin-vue, minus what
// Prettier owns (layout) and minus type-aware rules (they need a full type build; tsc runs in its own spec).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import vue from "eslint-plugin-vue";
import globals from "globals";

// `this: any` hides every mistake in a schema's methods: type `this` (Service, or the service's own interface).
const thisAny = {
	selector: "Identifier[name='this'] > TSTypeAnnotation > TSAnyKeyword",
	message: "Type `this` (e.g. `this: Service` or the service's interface) instead of `this: any`."
};

export default tseslint.config(
	{
		ignores: [
			"node_modules/",
			"public/",
			"dist/",
			"dist.tmp-*/",
			"bench/.cache/",
			"data/",
			"coverage/",
			"test-artifacts/",
			"bench/results/",
			"frontend/src/api/schema.d.ts"
		]
	},
	js.configs.recommended,
	...tseslint.configs.recommended,
	...vue.configs["flat/recommended"],
	{
		files: ["**/*.vue"],
		languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: [".vue"] } }
	},
	{
		languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
		linterOptions: { reportUnusedDisableDirectives: "error" },
		rules: {
			"@typescript-eslint/no-explicit-any": "off",
			// Manifests, routes and fixtures are loaded by path at run time: require() is the CommonJS way to do that.
			"@typescript-eslint/no-require-imports": "off",
			// Empty interfaces are the augmentation points the modules fill (ChannelEvents, BroadcastEvents).
			"@typescript-eslint/no-empty-object-type": ["error", { allowInterfaces: "always" }],
			// A generator function cannot be an arrow, so it reaches the service through `self`.
			"@typescript-eslint/no-this-alias": ["error", { allowedNames: ["self"] }],
			"@typescript-eslint/no-unused-vars": [
				"error",
				{
					argsIgnorePattern: "^_",
					varsIgnorePattern: "^_",
					caughtErrorsIgnorePattern: "^_",
					destructuredArrayIgnorePattern: "^_",
					ignoreRestSiblings: true
				}
			]
		}
	},
	{ files: ["frontend/**"], languageOptions: { globals: globals.browser } },
	{ files: ["test/**"], languageOptions: { globals: { ...globals.node, ...globals.jest } } },
	{ files: ["**/*.js", "**/*.cjs"], languageOptions: { sourceType: "commonjs" } },
	{
		// Vue's layout rules are Prettier's job; single-word page and component names are the seed's convention.
		files: ["**/*.vue"],
		rules: {
			"vue/html-indent": "off",
			"vue/max-attributes-per-line": "off",
			"vue/singleline-html-element-content-newline": "off",
			"vue/multiline-html-element-content-newline": "off",
			"vue/html-closing-bracket-newline": "off",
			"vue/html-self-closing": "off",
			"vue/first-attribute-linebreak": "off",
			"vue/multi-word-component-names": "off",
			"vue/attributes-order": "off",
			"vue/html-quotes": "off"
		}
	},
	{ files: ["services/**", "mixins/**", "lib/**"], rules: { "no-restricted-syntax": ["error", thisAny] } }
);
