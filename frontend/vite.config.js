import { resolve } from "node:path";
import { defineConfig } from "vite";

// Built into dist/ and served by the app at /static; /graphql serves dist/graphiql/index.html.
export default defineConfig({
  base: "/static/",
  root: resolve(import.meta.dirname),
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: { graphiql: resolve(import.meta.dirname, "graphiql/index.html") },
    },
  },
});
