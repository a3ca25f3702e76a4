// Builds the web UI (root: frontend/) into public/, which the gateway serves. `npm run build`.
// Dev server: `npx vite --config frontend/vite.config.ts` with the platform running on :3000.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

const root = fileURLToPath(new URL(".", import.meta.url));
const backend = process.env.BACKEND_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
	root,
	plugins: [vue()],
	resolve: { alias: { "@": `${root}src` } },
	define: {
		__VUE_OPTIONS_API__: "false",
		__VUE_PROD_DEVTOOLS__: "false",
		__VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false"
	},
	build: {
		outDir: fileURLToPath(new URL("../public", import.meta.url)),
		emptyOutDir: true,
		target: "es2022",
		// One vendor chunk that changes rarely; pages are split per route.
		rollupOptions: {
			output: {
				manualChunks: { vendor: ["vue", "vue-router", "pinia", "socket.io-client"] },
				chunkFileNames: chunk => `assets/${chunk.name.replace(/\.vue_vue_type.*$/, "")}-[hash].js`
			}
		}
	},
	server: {
		proxy: {
			"/api": backend,
			"/socket.io": { target: backend, ws: true }
		}
	}
});
