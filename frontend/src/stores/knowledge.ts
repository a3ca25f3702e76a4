// knowledge: the current organization's categories (as a tree), the articles of the chosen category, the open
// article; switching organization empties them (lib/use-crud.ts). Another member's change reaches it as a live
// notice naming only what kind of thing changed and its id (services/knowledge/store.ts liveChange): what is shown
// is then read again through the API, with this user's permissions, so a notice about an article the user may not
// read shows them nothing.
import { computed, ref } from "vue";
import { defineStore } from "pinia";
import { ApiError } from "@/lib/api";
import { useLive, useOrgScope } from "@/lib/use-crud";
import {
	kbArticlesApi,
	kbCategoriesApi,
	type KbArticleDetail,
	type KbArticleSummary,
	type KbCategory
} from "@/api/knowledge.api";

export interface TreeRow {
	category: KbCategory;
	depth: number;
}

export const useKnowledgeStore = defineStore("knowledge", () => {
	const categories = ref<KbCategory[] | null>(null);
	const selected = ref<string | null>(null);
	const articles = ref<KbArticleSummary[] | null>(null);
	const current = ref<KbArticleDetail | null>(null);
	const scope = useOrgScope(() => {
		categories.value = null;
		selected.value = null;
		articles.value = null;
		current.value = null;
	});

	// Depth-first, siblings by position then name; a category whose parent the caller cannot see is a root here.
	const tree = computed<TreeRow[]>(() => {
		const all = categories.value ?? [];
		const ids = new Set(all.map(c => c.id));
		const children = (parent: string | null) =>
			all.filter(c => (c.parent_id && ids.has(c.parent_id) ? c.parent_id : null) === parent);
		const out: TreeRow[] = [];
		const walk = (parent: string | null, depth: number) => {
			for (const c of children(parent)) {
				out.push({ category: c, depth });
				walk(c.id, depth + 1);
			}
		};
		walk(null, 0);
		return out;
	});

	async function loadCategories() {
		await scope.load(kbCategoriesApi.list, list => (categories.value = list));
	}

	async function loadArticles() {
		const category = selected.value ?? undefined;
		await scope.load(
			() => kbArticlesApi.list({ category_id: category }),
			page => selected.value === (category ?? null) && (articles.value = page.rows)
		);
	}

	async function select(id: string | null) {
		selected.value = id;
		articles.value = null;
		await loadArticles();
	}

	async function loadArticle(id: string) {
		await scope.load(
			() => kbArticlesApi.get(id),
			detail => (current.value = detail)
		);
	}

	// The open article read again; one removed, or no longer readable (its category's grants changed), closes.
	async function reloadCurrent(id: string) {
		try {
			await loadArticle(id);
		} catch (e) {
			if (!(e instanceof ApiError && e.status === 404)) throw e;
			if (current.value?.article.id === id) current.value = null;
		}
	}

	useLive("knowledge-articles", async notices => {
		const open = current.value?.article.id;
		await Promise.all([
			articles.value ? loadArticles() : undefined,
			open && notices.some(n => n.id === open) ? reloadCurrent(open) : undefined
		]);
	});
	// A category renamed, moved, removed or given other grants: the tree, the list and the open article may differ.
	useLive("knowledge-categories", async () => {
		const open = current.value?.article.id;
		await Promise.all([
			categories.value ? loadCategories() : undefined,
			articles.value ? loadArticles() : undefined,
			open ? reloadCurrent(open) : undefined
		]);
	});

	return { categories, tree, selected, articles, current, loadCategories, loadArticles, select, loadArticle };
});
