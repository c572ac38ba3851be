// The pacer on a fake clock: release times, order, burst tolerance and holds.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Pacer, pacingMargin } from "../../consumer/pacer";

beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
    vi.useRealTimers();
});

/** Starts `n` acquisitions at once and returns their release times, in release order. */
async function releases(pacer: Pacer, n: number, runFor: number): Promise<Array<{ i: number; at: number }>> {
    const out: Array<{ i: number; at: number }> = [];
    for (let i = 0; i < n; i++) void pacer.acquire().then(() => out.push({ i, at: Date.now() }));
    await vi.advanceTimersByTimeAsync(runFor);
    return out;
}

describe("Pacer", () => {
    it("releases waiting calls in call order, one interval (plus the margin) apart", async () => {
        const pacer = new Pacer({ requestsPerSecond: 2 });
        expect(pacer.intervalMs).toBeCloseTo(500 * (1 + pacingMargin));
        const out = await releases(pacer, 5, 5000);
        expect(out.map((r) => r.i)).toEqual([0, 1, 2, 3, 4]);
        expect(out.map((r) => r.at)).toEqual([0, 550, 1100, 1650, 2200]);
    });

    it("never releases more than the rate within any second", async () => {
        const pacer = new Pacer({ requestsPerSecond: 20 });
        const out = await releases(pacer, 100, 10_000);
        const times = out.map((r) => r.at);
        for (const t of times) expect(times.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(20);
    });

    it("allows `burst` back-to-back releases after an idle spell, then paces", async () => {
        const pacer = new Pacer({ requestsPerSecond: 2, burst: 3 });
        const out = await releases(pacer, 5, 5000);
        expect(out.map((r) => r.at)).toEqual([0, 0, 0, 550, 1100]);
    });

    it("holds every queued call after the portal throttled", async () => {
        const pacer = new Pacer({ requestsPerSecond: 10 });
        const out: number[] = [];
        void pacer.acquire().then(() => out.push(Date.now()));
        await vi.advanceTimersByTimeAsync(0);
        pacer.holdFor(1000);
        for (let i = 0; i < 2; i++) void pacer.acquire().then(() => out.push(Date.now()));
        await vi.advanceTimersByTimeAsync(3000);
        expect(out).toEqual([0, 1000, 1110]);
    });

    it("rejects a rate or burst that is not one", () => {
        expect(() => new Pacer({ requestsPerSecond: 0 })).toThrow(/requestsPerSecond/);
        expect(() => new Pacer({ requestsPerSecond: 2, burst: 0.5 })).toThrow(/burst/);
    });
});
