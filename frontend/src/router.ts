// History-mode routes: public auth pages, then every module's pages inside the signed-in layout.
// The gateway answers unknown non-/api paths with index.html, so deep links and reloads land here.
import { createRouter, createWebHistory } from "vue-router";
import { modules } from "./modules";
import { useAuthStore } from "./stores/auth";
import AppLayout from "./components/layout/AppLayout.vue";

export const router = createRouter({
	history: createWebHistory(),
	routes: [
		{
			path: "/sign-in",
			name: "sign-in",
			component: () => import("./pages/auth/SignInPage.vue"),
			meta: { public: true, title: "Sign in" }
		},
		{
			path: "/sign-up",
			name: "sign-up",
			component: () => import("./pages/auth/SignUpPage.vue"),
			meta: { public: true, title: "Create account" }
		},
		{
			path: "/reset-password/:token",
			name: "reset-password",
			component: () => import("./pages/auth/ResetPasswordPage.vue"),
			meta: { public: true, title: "New password" }
		},
		// Opened signed in or not: the page offers to accept, or to sign up with the invited email.
		{
			path: "/invitations/:token",
			name: "invitation",
			component: () => import("./pages/auth/InvitationPage.vue"),
			meta: { open: true, title: "Invitation" }
		},
		{
			path: "/",
			component: AppLayout,
			children: [
				{
					path: "account",
					name: "account",
					component: () => import("./pages/auth/AccountPage.vue"),
					meta: { title: "Account" }
				},
				...modules.flatMap(m => m.routes),
				{
					path: ":pathMatch(.*)*",
					name: "not-found",
					component: () => import("./pages/NotFoundPage.vue"),
					meta: { title: "Not found" }
				}
			]
		}
	]
});

router.beforeEach(async to => {
	const auth = useAuthStore();
	await auth.ready;
	if (to.meta.open) return true;
	if (to.meta.public) return auth.isSignedIn ? { name: "home" } : true;
	if (!auth.isSignedIn) return { name: "sign-in", query: to.fullPath === "/" ? {} : { redirect: to.fullPath } };
	if (to.meta.permission && !auth.can(to.meta.permission)) return { name: "home" };
	return true;
});

router.afterEach(to => {
	document.title = to.meta.title ? `${to.meta.title} · Coder IDE` : "Coder IDE";
});
