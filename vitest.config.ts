import { defineConfig } from "vitest/config";

// One suite per part of the tree: pure units, the local stand-ins, the built bundle end to end,
// the authorize CLI, the Pulumi program under mocks, the workflows, the soak and the benchmark,
// the consumer client, status.
export default defineConfig({
    test: {
        setupFiles: ["test/helpers/loopback-only.ts"],
        reporters: ["default", "./test/helpers/summary-reporter.ts"],
        projects: [
            { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
            { extends: true, test: { name: "local", include: ["test/local/**/*.test.ts"], testTimeout: 20_000 } },
            { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 30_000 } },
            { extends: true, test: { name: "cli", include: ["test/cli/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 30_000 } },
            { extends: true, test: { name: "infra", include: ["test/infra/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000 } },
            { extends: true, test: { name: "ci", include: ["test/ci/**/*.test.ts"], testTimeout: 30_000 } },
            { extends: true, test: { name: "consumer", include: ["test/consumer/**/*.test.ts"], testTimeout: 30_000, hookTimeout: 30_000 } },
            { extends: true, test: { name: "evidence", include: ["test/evidence/**/*.test.ts"], testTimeout: 120_000 } },
            { extends: true, test: { name: "status", include: ["test/status/**/*.test.ts"], testTimeout: 30_000, hookTimeout: 30_000 } },
        ],
    },
});
