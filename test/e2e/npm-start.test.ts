// `npm start` driven as a user runs it: a child process, its printed lines read back.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startBitrix24Sandbox } from "../../local/bitrix24-sandbox/sandbox";
import { expectNoSecrets } from "../helpers/no-secrets";
import { runTsx, type ChildResult } from "../helpers/run-child";

function runStart(args: string[], env: Record<string, string> = {}): Promise<ChildResult> {
    return runTsx("local/start.ts", args, { env });
}

const tickLines = (out: string) => out.split("\n").filter((l) => /^\d\d:\d\d:\d\d {2}/.test(l));
const stateDirs: string[] = [];
afterAll(() => stateDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe("npm start", () => {
    it("runs against the sandbox with demo credentials and prints one readable line per tick", async () => {
        const { code, out, err } = await runStart(["--schedule", "* * * * * *", "--ticks", "2"]);
        expect(err).not.toMatch(/loopback guard/);
        expect(code).toBe(0);
        const ticks = tickLines(out);
        expect(ticks).toHaveLength(2);
        expect(ticks[0]).toMatch(/refreshed +refresh token v2, access token v2, expires \d\d:\d\d:\d\d/);
        expect(ticks[1]).toMatch(/still fresh +\d+ min left/);
        expect(out).toMatch(/SECRET_MANAGER_EMULATOR_HOST=127\.0\.0\.1:\d+/);
    });

    it("runs against a real portal from the environment and keeps the chain across restarts", async () => {
        const portal = await startBitrix24Sandbox({ accessTtlSeconds: 600 });
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "b24-start-"));
        stateDirs.push(stateDir);
        const first = portal.authorize();
        const env = {
            B24_CLIENT_ID: portal.clientId,
            B24_CLIENT_SECRET: portal.clientSecret,
            B24_REFRESH_TOKEN: first.refreshToken,
            B24_OAUTH_TOKEN_URL: portal.tokenUrl,
        };
        try {
            const run1 = await runStart(["--schedule", "* * * * * *", "--ticks", "1", "--state-dir", stateDir], env);
            expect(run1.code).toBe(0);
            expect(tickLines(run1.out)[0]).toMatch(/refreshed/);
            // Restarted with the same (now used) B24_REFRESH_TOKEN: the kept chain is used, not the env value.
            const run2 = await runStart(["--schedule", "* * * * * *", "--ticks", "1", "--state-dir", stateDir], env);
            expect(run2.code).toBe(0);
            expect(run2.out).toMatch(/using the refresh token chain kept in/);
            expect(tickLines(run2.out)[0]).toMatch(/refreshed/);
            expect(portal.refreshCount()).toBe(2);
            expectNoSecrets([run1.out, run1.err, run2.out, run2.err], [portal.clientSecret, ...portal.issuedTokens()]);
        } finally {
            await portal.stop();
        }
    });

    it("refuses a half-configured real-portal run and names what is missing", async () => {
        const { code, err } = await runStart(["--ticks", "1"], { B24_CLIENT_ID: "local.abc.1" });
        expect(code).toBe(2);
        expect(err).toMatch(/missing: B24_CLIENT_SECRET, B24_REFRESH_TOKEN/);
    });

    it("rejects a bad schedule with the fix", async () => {
        const { code, err } = await runStart(["--schedule", "every ten minutes"]);
        expect(code).toBe(2);
        expect(err).toMatch(/--schedule "every ten minutes" is not a valid cron expression.*\*\/10 \* \* \* \*/s);
    });
});
