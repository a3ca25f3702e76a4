// What a module plugs into the shell: its routes (children of the signed-in layout) and its sidebar entries.
import type { Component } from "vue";
import type { RouteRecordRaw } from "vue-router";
import type { IconName } from "@/components/ui/icons";

export interface NavEntry {
	// Route name the entry opens; the entry is active on that route, its children, and pages under its path.
	route: string;
	label: string;
	icon: IconName;
	// Sidebar group heading; entries without one come first.
	section?: string;
	// Permission the current role needs ("<module>:<verb>"); entries the role cannot use are hidden.
	permission?: string;
}

// Something a module shows in the shell's top bar on every page (the notifications bell).
export interface HeaderItem {
	component: Component;
	// Permission the current role needs; hidden otherwise.
	permission?: string;
}

export interface AppModule {
	name: string;
	// Place in the sidebar, lowest first (modules/index.ts finds every *.module.ts; equal orders sort by name).
	order: number;
	routes: RouteRecordRaw[];
	nav: NavEntry[];
	header?: HeaderItem[];
}

declare module "vue-router" {
	interface RouteMeta {
		// Page heading and document title.
		title?: string;
		// Reachable signed out (sign-in, sign-up); signed-in users are sent home.
		public?: boolean;
		// Reachable signed in or out (an invitation link).
		open?: boolean;
		// Permission the current role needs; without it the router sends the user home.
		permission?: string;
	}
}
