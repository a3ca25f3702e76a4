// Code highlighting for snippets and the playground's answers: highlight.js's core with the few languages they show
// (the full bundle is ten times the size). Output is highlight.js's escaped HTML with `hljs-*` classes only.
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import typescript from "highlight.js/lib/languages/typescript";
import python from "highlight.js/lib/languages/python";
import json from "highlight.js/lib/languages/json";
import yaml from "highlight.js/lib/languages/yaml";
import xml from "highlight.js/lib/languages/xml";
import css from "highlight.js/lib/languages/css";
import sql from "highlight.js/lib/languages/sql";
import go from "highlight.js/lib/languages/go";
import rust from "highlight.js/lib/languages/rust";
import java from "highlight.js/lib/languages/java";
import "highlight.js/styles/github.css";

for (const [name, lang] of Object.entries({
	bash,
	javascript,
	typescript,
	python,
	json,
	yaml,
	xml,
	css,
	sql,
	go,
	rust,
	java
}))
	hljs.registerLanguage(name, lang);
hljs.registerAliases(["sh", "shell", "curl"], { languageName: "bash" });
hljs.registerAliases(["js", "jsx"], { languageName: "javascript" });
hljs.registerAliases(["ts", "tsx"], { languageName: "typescript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["html", "vue"], { languageName: "xml" });
hljs.registerAliases(["yml"], { languageName: "yaml" });

export const escapeHtml = (s: string) =>
	s.replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

// Highlighted HTML for `code`; a language it does not know is shown plain (escaped).
export function highlight(code: string, language?: string): string {
	if (language && hljs.getLanguage(language)) return hljs.highlight(code, { language, ignoreIllegals: true }).value;
	return escapeHtml(code);
}
