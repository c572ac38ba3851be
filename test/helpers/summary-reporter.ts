// Prints the run's result as one plain line, "N passed, N failed, N skipped", after vitest's own
// summary: a line any CI can read without knowing vitest's format. Modules that failed to load
// count as failures.
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
    onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
        const count = { passed: 0, failed: 0, skipped: 0 };
        for (const module of testModules) {
            if (module.state() === "failed" && [...module.children.allTests()].length === 0) count.failed += 1;
            for (const test of module.children.allTests()) {
                const state = test.result().state;
                if (state === "passed") count.passed += 1;
                else if (state === "failed") count.failed += 1;
                else count.skipped += 1;
            }
        }
        count.failed += unhandledErrors.length;
        // Written as the process exits, so it is the very last line, after vitest's own summary.
        process.once("exit", () => {
            process.stdout.write(`\n${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
        });
    }
}
