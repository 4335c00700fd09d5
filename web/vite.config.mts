// Builds the portal (web/src) into web/dist, which the API serves at `/` (api/portal.ts). `make portal` runs it.
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // One app of modest size: React, iTwinUI and the portal's pages in one script.
    chunkSizeWarningLimit: 2500,
    rolldownOptions: {
      // iTwinUI marks its modules "use client" (for React server components): meaningless in a client-only bundle.
      // Plugin timings are a profiling hint, not a problem of the build.
      onLog(level, log, handler) {
        if (log.code === "MODULE_LEVEL_DIRECTIVE" || log.code === "PLUGIN_TIMINGS") return;
        handler(level, log);
      },
    },
  },
});
