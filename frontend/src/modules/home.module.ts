// home: the dashboard a signed-in user lands on.
import type { AppModule } from "./types";

export const homeModule: AppModule = {
	name: "home",
	order: 0,
	routes: [{ path: "", name: "home", component: () => import("@/pages/home/HomePage.vue"), meta: { title: "Home" } }],
	nav: [{ route: "home", label: "Home", icon: "home" }]
};
