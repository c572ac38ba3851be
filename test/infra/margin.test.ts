// The refresh margin, tested directly: longest gap between ticks + 600 s, analytical, checked
// against cron-parser's own iteration where daylight saving shifts real time.
import { CronExpressionParser } from "cron-parser";
import { describe, expect, it } from "vitest";
import { cronSyntaxProblem, longestTickGap, refreshMarginSeconds, ScheduleTooSparseError } from "../../infra/margin";

const from = new Date("2025-01-01T00:00:00Z");

/** Brute force over a window: what cron-parser itself says the longest gap is there. */
function iteratedGap(schedule: string, timeZone: string, start: string, hours: number): number {
    const begin = new Date(start);
    const ticks = CronExpressionParser.parse(schedule, { tz: timeZone, currentDate: begin, endDate: new Date(begin.getTime() + hours * 3_600_000) });
    let previous: number | undefined;
    let longest = 0;
    while (ticks.hasNext()) {
        const t = ticks.next().getTime();
        if (previous !== undefined) longest = Math.max(longest, (t - previous) / 1000);
        previous = t;
    }
    return longest;
}

describe("refreshMarginSeconds", () => {
    it("gives the refresher's default 1200 s for the default schedule", () => {
        expect(refreshMarginSeconds("*/10 * * * *", "Etc/UTC", from)).toBe(1200);
    });

    it.each([
        ["*/10 * * * *", "Europe/Warsaw", 1200],
        ["*/10 * * * *", "America/New_York", 1200],
        ["* * * * *", "Etc/UTC", 660],
        ["*/15 * * * *", "Asia/Kolkata", 1500],
        ["*/45 * * * *", "Etc/UTC", 3300], // ticks at :00 and :45, so the long gap is 45 min
        ["0,49 * * * *", "Etc/UTC", 3540], // the sparsest schedule that still fits
        ["5-55/10 * * jan-dec sun-sat", "Etc/UTC", 1200],
        ["*/10 * 1-31 * 1-5", "Etc/UTC", 1200], // both day fields restricted: either matches, so every day
    ])("%s in %s gives %i s", (schedule, zone, margin) => {
        expect(refreshMarginSeconds(schedule, zone, from)).toBe(margin);
    });

    it.each([
        ["0 * * * *", "hourly: 60 min between ticks"],
        ["*/50 * * * *", "ticks at :00 and :50 leave 50 min, margin exactly 3600"],
        ["*/30 9-17 * * *", "office hours leave the night without ticks"],
        ["*/10 * * * 1-5", "weekdays leave the weekend without ticks"],
        ["*/10 * 1-15 * *", "half the month without ticks"],
    ])("rejects %s (%s) with the fix", (schedule) => {
        let error: unknown;
        try {
            refreshMarginSeconds(schedule, "Etc/UTC", from);
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(ScheduleTooSparseError);
        expect((error as Error).message).toContain(`"${schedule}"`);
        expect((error as Error).message).toContain('"*/10 * * * *"');
    });

    it("reports whole skipped hours or days as a lower bound", () => {
        expect(longestTickGap("*/30 9-17 * * *", "Etc/UTC", from)).toEqual({ seconds: 3600, exact: false });
        expect(longestTickGap("*/10 * * * 1-5", "Etc/UTC", from)).toEqual({ seconds: 86400, exact: false });
        expect(longestTickGap("0 * * * *", "Etc/UTC", from)).toEqual({ seconds: 3600, exact: true });
    });

    it.each([
        ["*/10 * * * *", "Europe/Warsaw", "2025-03-30T00:00:00Z"], // spring forward
        ["*/10 * * * *", "Europe/Warsaw", "2025-10-26T00:00:00Z"], // fall back
        ["*/7 * * * *", "America/New_York", "2025-11-02T04:00:00Z"],
        ["*/10 * * * *", "Australia/Lord_Howe", "2025-04-05T14:00:00Z"], // half-hour shift
        ["0,20,45 * * * *", "Etc/UTC", "2025-06-01T00:00:00Z"],
    ])("agrees with cron-parser's iteration around %s in %s (%s)", (schedule, zone, start) => {
        const analytical = longestTickGap(schedule, zone, new Date("2025-01-01T00:00:00Z"));
        expect(analytical.exact).toBe(true);
        // The analytical answer is the max over the whole year, so it bounds this window and, for
        // these schedules, is reached in it.
        expect(iteratedGap(schedule, zone, start, 6)).toBe(analytical.seconds);
    });
});

describe("cronSyntaxProblem", () => {
    it.each(["*/10 * * * *", "0,15,30,45 * * * *", "*/5 0-23 * JAN-DEC MON-SUN", "0 */2 1,15 * 0,7"])("accepts %s", (schedule) => {
        expect(cronSyntaxProblem(schedule)).toBeUndefined();
    });

    it.each([
        ["", "five fields"],
        ["*/10 * * * * *", "five fields"], // seconds field: cron-parser takes it, Cloud Scheduler does not
        ["@hourly", "five fields"],
        ["every 10 minutes", "five fields"],
        ["0 0 L * *", "day of month"],
        ["0 0 * * 5#3", "day of week"],
        ["H * * * *", "minute"],
        ["*/10 * * * ? ", "day of week"],
    ])("rejects %j, naming %s", (schedule, part) => {
        expect(cronSyntaxProblem(schedule)).toContain(part);
    });

    it("rejects values cron-parser finds out of range", () => {
        expect(() => refreshMarginSeconds("61 * * * *", "Etc/UTC", from)).toThrow();
    });
});
