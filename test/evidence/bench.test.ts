// `npm run bench` in miniature: one cold start per variant, two warm deliveries. It checks that the
// table and its ratios are printed and that every refresher delivery really refreshed; it asserts
// no timing (the machine is shared).
import { describe, expect, it } from "vitest";
import { formatBenchReport } from "../../evidence/bench/report";
import { runBench } from "../../evidence/bench/run-bench";
import { expectNoSecrets } from "../helpers/no-secrets";

describe("npm run bench", () => {
    it("measures the bundle against the unbundled refresher and the no-op floor, and prints the ratios", async () => {
        const result = await runBench({ runs: 1, warm: 2 });

        expect(result.failures).toEqual([]);
        for (const name of ["floor", "unbundled", "bundle"] as const) {
            const variant = result.variants[name];
            expect(variant.firstDoneMs).toHaveLength(1);
            expect(variant.warmMs).toHaveLength(2);
            expect(variant.firstDoneMs[0]).toBeGreaterThanOrEqual(variant.portOpenMs[0]!);
            expect(variant.peakRssBytes[0]).toBeGreaterThan(0);
        }
        expect(result.variants.bundle.size.bytes).toBeLessThan(result.variants.unbundled.size.bytes);
        const table = formatBenchReport(result);
        expect(table).toMatch(/bundle\/unbundled\s+bundle\/floor/);
        expect(table).toMatch(/cold start: spawn to first 204 \(median\)\s+\d+ ms\s+\d+ ms\s+\d+ ms\s+x\d+\.\d\d\s+x\d+\.\d\d/);
        expect(table).toMatch(/peak memory VmHWM/);
        expectNoSecrets([...result.lines, table], result.secrets);
    });
});
