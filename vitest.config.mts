import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "labextension/src/**/*.test.ts"],
    environment: "node",
    globals: false,
    setupFiles: ["./vitest.setup.ts"],
  },
});
