// knowledge module: /api/knowledge (categories, articles, search), in the organization chosen in the switcher.
// Types come from the generated schema.d.ts (npm run api-types).
import { api, request, type Page, type Schema } from "@/lib/api";

export type KbCategory = Schema<"KbCategory">;
export type KbGrant = Schema<"KbGrant">;
export type KbArticle = Schema<"KbArticle">;
export type KbArticleDetail = Schema<"KbArticleDetail">;
export type KbArticleSummary = Schema<"KbArticleSummary">;
export type KbRevision = Schema<"KbRevision">;
export type KbRevisionDiff = Schema<"KbRevisionDiff">;
export type KbSearchResult = Schema<"KbSearchResult">;
export type KbSearchResults = Schema<"KbSearchResults">;
export type KbGrantInput = { team_id?: string; role?: string; access: "read" | "write" };
export type KbCategoryInput = { name?: string; description?: string; parent_id?: string | null; position?: number };
export type KbArticleInput = {
	category_id?: string;
	title?: string;
	body?: string;
	tags?: string[];
	status?: "draft" | "published";
	note?: string;
};

const category = (id: string) => `/knowledge/categories/${encodeURIComponent(id)}`;
const article = (id: string) => `/knowledge/articles/${encodeURIComponent(id)}`;

export const kbCategoriesApi = {
	list: () => api.get<KbCategory[]>("/knowledge/categories"),
	create: (body: KbCategoryInput) => api.post<KbCategory>("/knowledge/categories", body),
	update: (id: string, body: KbCategoryInput) => api.patch<KbCategory>(category(id), body),
	remove: (id: string) => api.delete<KbCategory>(category(id)),
	grants: (id: string) => api.get<KbGrant[]>(`${category(id)}/grants`),
	setGrants: (id: string, grants: KbGrantInput[]) =>
		request<KbGrant[]>("PUT", `${category(id)}/grants`, { body: { grants } })
};

export const kbArticlesApi = {
	list: (query: { category_id?: string; status?: string; search?: string } = {}) =>
		api.get<Page<KbArticleSummary>>("/knowledge/articles", { ...query, pageSize: 100 }),
	get: (id: string) => api.get<KbArticleDetail>(article(id)),
	create: (body: KbArticleInput) => api.post<KbArticle>("/knowledge/articles", body),
	update: (id: string, body: KbArticleInput) => api.patch<KbArticle>(article(id), body),
	publish: (id: string) => api.post<KbArticle>(`${article(id)}/publish`, {}),
	unpublish: (id: string) => api.post<KbArticle>(`${article(id)}/unpublish`, {}),
	remove: (id: string) => api.delete<KbArticle>(article(id)),
	revisions: (id: string) => api.get<KbRevision[]>(`${article(id)}/revisions`),
	diff: (id: string, from: number, to: number) => api.get<KbRevisionDiff>(`${article(id)}/diff`, { from, to }),
	restore: (id: string, revision: number) => api.post<KbArticle>(`${article(id)}/restore`, { revision })
};

export const knowledgeApi = {
	search: (body: { query: string; k?: number; categoryId?: string }) =>
		api.post<KbSearchResults>("/knowledge/search", body)
};
