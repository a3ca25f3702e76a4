// The modules of the IDE, in sidebar order: every modules/<module>.module.ts, found at build time, sorted by its
// declared `order`. A new module adds its file here (and pages/<module>/, components/<module>/, stores/<module>.ts,
// api/<module>.api.ts); nothing lists it by hand.
import type { AppModule, HeaderItem, NavEntry } from "./types";

const isModule = (v: unknown): v is AppModule =>
	typeof v === "object" && v !== null && "name" in v && "routes" in v && "nav" in v;

const found = import.meta.glob<Record<string, unknown>>("./*.module.ts", { eager: true });

export const modules: AppModule[] = Object.values(found)
	.flatMap(exports => Object.values(exports).filter(isModule))
	.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));

export const navigation: NavEntry[] = modules.flatMap(m => m.nav);

// What modules put in the top bar, in module order.
export const headerItems: HeaderItem[] = modules.flatMap(m => m.header ?? []);

export type { AppModule, HeaderItem, NavEntry };
