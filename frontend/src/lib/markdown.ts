// A model's answer as Markdown: rendered by marked, code blocks highlighted, and the HTML sanitized by DOMPurify
// before it reaches the page. An answer is untrusted text. Raw HTML in it (a <script>, an onerror attribute) is shown
// as the text it is, never parsed: even DOMPurify's inert parse makes Chrome compile an on* handler (a CSP report).
// Sanitizing stays the last step, for what marked itself makes of a link (`[x](javascript:…)`).
import { Marked } from "marked";
import DOMPurify from "dompurify";
import { escapeHtml, highlight } from "./highlight";

const marked = new Marked({
	gfm: true,
	breaks: true,
	renderer: {
		html({ text }) {
			return escapeHtml(text);
		},
		code({ text, lang }) {
			const language = (lang ?? "").trim().split(/\s+/)[0].toLowerCase();
			const label = language ? `<span class="md-code__lang">${highlight(language)}</span>` : "";
			return `<pre class="md-code">${label}<code class="hljs">${highlight(text, language)}</code></pre>`;
		}
	}
});

// Links open in a new tab without access to this page.
DOMPurify.addHook("afterSanitizeAttributes", node => {
	if (node.tagName === "A" && node.getAttribute("href")) {
		node.setAttribute("target", "_blank");
		node.setAttribute("rel", "noopener noreferrer nofollow");
	}
});

export function renderMarkdown(text: string): string {
	// Without the newline marked ends each block with: the answer's text is the text the model wrote.
	const html = (marked.parse(text, { async: false }) as string).trim();
	return DOMPurify.sanitize(html, {
		FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
		FORBID_ATTR: ["style"],
		ADD_ATTR: ["target"]
	});
}
