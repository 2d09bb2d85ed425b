import { resolve } from "node:path";
import { defineConfig } from "vite";

const page = (path) => resolve(import.meta.dirname, path);

// Built into dist/ and served by the app at /static. /graphql serves dist/graphiql/index.html;
// /sign-in, /plugins and /my-plugins serve the pages below (app/web.py).
export default defineConfig({
  base: "/static/",
  root: resolve(import.meta.dirname),
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: {
        graphiql: page("graphiql/index.html"),
        "sign-in": page("sign-in/index.html"),
        plugins: page("plugins/index.html"),
        "my-plugins": page("my-plugins/index.html"),
        // The widget alone, at a stable address, for pages outside this build:
        // <script type="module" src="/static/widget/analytics.js"></script> <plugboard-analytics></plugboard-analytics>
        "analytics-widget": page("src/analytics/widget.js"),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === "analytics-widget" ? "widget/analytics.js" : "assets/[name]-[hash].js"),
      },
    },
  },
});
