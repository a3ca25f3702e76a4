// knowledge: the current organization's categories (as a tree), the articles of the chosen category, the open
// article; switching organization empties them (lib/use-crud.ts).
import { computed, ref } from "vue";
import { defineStore } from "pinia";
import { useOrgScope } from "@/lib/use-crud";
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

	return { categories, tree, selected, articles, current, loadCategories, loadArticles, select, loadArticle };
});
