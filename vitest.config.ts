import { defineConfig } from "vitest/config";

/**
 * Integration tests run against the real embedded stack (Temporal dev server, FerretDB, worker, API) that
 * test/global-setup.ts starts on test ports with a temporary DATA_DIR, and stops afterwards.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 600_000,
    reporters: ["default"],
  },
});
