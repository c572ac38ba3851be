// The fault soak inside `npm test`: a short seeded run under every fault kind, a fault-free day,
// and proof that the invariants can fail: a refresher broken on purpose makes `npm run soak` exit 1.
// Nothing here asserts a timing.
import { describe, expect, it } from "vitest";
import { planTick, faultKinds } from "../../evidence/soak/faults";
import { mulberry32 } from "../../evidence/soak/prng";
import { formatSoakReport } from "../../evidence/soak/report";
import { countTextsWithSecret, runSoak, soakDefaults, type SoakOptions } from "../../evidence/soak/run-soak";
import { expectNoSecrets } from "../helpers/no-secrets";
import { runTsx } from "../helpers/run-child";

/** The sandbox's default client secret: the one secret a child process's output can be checked against from here. */
const sandboxClientSecret = "SandboxDemoSecretNotARealOneXXXXXXXXXXXXXXXXXXXXXX";

const soak = (overrides: Partial<SoakOptions>) => runSoak({ ...soakDefaults, ...overrides });
const failing = (result: Awaited<ReturnType<typeof runSoak>>) => result.invariants.filter((i) => !i.ok).map((i) => i.name);

describe("npm run soak", () => {
    it("holds every invariant over two seeded days under faults, and prints the table", async () => {
        const result = await soak({ days: 2, seed: 1 });

        expect(failing(result)).toEqual([]);
        expect(result.stats.ticks).toBe(288);
        const fired = Object.values(result.stats.faults).reduce((sum, f) => sum + f.fired, 0);
        expect(fired).toBeGreaterThan(10);
        // Every break in this run came from a fault that spends a token, and each one raised a CRITICAL line.
        expect(result.stats.incidents.length).toBeGreaterThan(0);
        expect(result.stats.incidents.every((i) => i.consumed && i.critical)).toBe(true);
        expect(result.stats.reauthorizations).toBeGreaterThan(0);
        const table = formatSoakReport(result);
        for (const row of ["ticks", "refreshes", "faults fired", "broken chains", "minutes with no valid access token", "OAuth refresh calls per day", "peak active versions", "containing a secret"]) {
            expect(table).toContain(row);
        }
        expect(table).toMatch(/every invariant holds/);
        expectNoSecrets([...result.output, table], result.secrets);
    });

    it("makes at most 30 OAuth calls a day and always has a valid access token when nothing fails", async () => {
        const result = await soak({ days: 1, rate: 0 });

        expect(failing(result)).toEqual([]);
        expect(result.stats.oauthCallsPerDay[0]).toBeGreaterThan(0);
        expect(result.stats.oauthCallsPerDay[0]).toBeLessThanOrEqual(30);
        expect(result.stats.minutes).toMatchObject({ total: 1440, invalid: 0, awaitingReauthorization: 0 });
        expect(result.stats.peakActiveVersions).toEqual({ refresh: 2, access: 2 });
        expectNoSecrets(result.output, result.secrets);
    });

    it("survives a crash between the two writes: the refresh token is written first", async () => {
        const result = await soak({ days: 0.5, rate: 0.5, faults: ["crash_between_writes"] });

        expect(result.stats.faults.crash_between_writes.fired).toBeGreaterThan(0);
        expect(result.stats.incidents).toEqual([]);
        expect(failing(result).filter((name) => name.includes("chain"))).toEqual([]);
        expectNoSecrets(result.output, result.secrets);
    });

    it("exits 1 when the refresher is broken on purpose (--break access-first): the same crash then loses the chain", async () => {
        const run = await runTsx("evidence/soak.ts", ["--days", "0.5", "--rate", "0.5", "--faults", "crash_between_writes", "--break", "access-first", "--quiet"]);

        expect(run.code).toBe(1);
        expect(run.out).toMatch(/FAIL {2}no broken chain from a fault that does not spend a token: .*after crash_between_writes/);
        expect(run.out).toMatch(/invariant\(s\) FAILED/);
        expectNoSecrets([run.out, run.err], [sandboxClientSecret]);
    });

    it("catches a token in a log line that bypasses the Redactor (--break log-token)", async () => {
        const result = await soak({ days: 0.25, rate: 0, breakMode: "log-token" });

        expect(failing(result)).toEqual(["no secret in any output line or error"]);
        expect(result.stats.linesWithSecret).toBeGreaterThan(0);
        // The shared check agrees: the leak is real (and the only one, deliberately).
        expect(() => expectNoSecrets(result.output, result.secrets)).toThrow();
        expectNoSecrets(
            result.output.filter((line) => !line.includes("refreshing with")),
            result.secrets,
        );
    });

    it("catches versions piling up (--break no-prune)", async () => {
        const result = await soak({ days: 0.25, rate: 0, breakMode: "no-prune" });

        expect(failing(result)).toEqual([expect.stringContaining("active versions per secret")]);
        expect(result.stats.peakActiveVersions.refresh).toBeGreaterThan(3);
        expectNoSecrets(result.output, result.secrets);
    });

    it("rejects bad input with a message and exit code 2", async () => {
        const run = await runTsx("evidence/soak.ts", ["--days", "0", "--rate", "2"]);

        expect(run.code).toBe(2);
        expect(run.err).toMatch(/--days must be a number above 0/);
        expect(run.err).toMatch(/--rate must be a number from 0 to 1/);
        expectNoSecrets([run.out, run.err], [sandboxClientSecret]);
    });
});

describe("soak building blocks", () => {
    it("draws the same fault schedule from the same seed", () => {
        const schedule = (seed: number) => {
            const random = mulberry32(seed);
            return Array.from({ length: 3000 }, (_, i) =>
                planTick({ random, rate: 0.3, enabled: new Set(faultKinds), due: i % 5 === 0, oauthResponseTimeoutMs: 800 }),
            );
        };
        expect(schedule(42)).toEqual(schedule(42));
        expect(schedule(42)).not.toEqual(schedule(43));
        expect(new Set(schedule(42).map((p) => p.kind).filter(Boolean)).size).toBe(faultKinds.length);
    });

    it("finds a token anywhere in a line, without the Redactor", () => {
        const token = "ab".repeat(35);
        const secrets = [token, sandboxClientSecret];
        expect(countTextsWithSecret([`x=0f${token}9`, "no secret here", `secret ${sandboxClientSecret}`, token.slice(1)], secrets)).toBe(2);
    });
});
