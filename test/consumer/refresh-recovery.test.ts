// The bug every hand-written reader has: it caches the access token past a refresh, and Bitrix24
// revokes the old access token on refresh. Here the real bundled refresher (dist/function under the
// functions framework) refreshes while a consumer holds a cached token.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createB24Client, type B24Client } from "../../consumer";
import { expectNoSecrets } from "../helpers/no-secrets";
import { projectId, startTestSystem, type TestSystem } from "../helpers/system";
import { captureLog } from "./harness";

let system: TestSystem;
let b24: B24Client;
const captured = captureLog();

beforeAll(async () => {
    system = await startTestSystem();
    b24 = createB24Client({
        projectId,
        clientEndpoint: `${system.sandbox.url}/rest/`,
        emulatorHost: system.emulator.host,
        requestsPerSecond: 50,
        log: captured.log,
        env: {},
    });
});

afterAll(async () => {
    await b24?.close();
    await system?.stop();
});

const consumerCalls = () => system.emulator.calls.map((c) => ({ method: c.method, name: c.name }));
const refreshSecretCalls = () => system.emulator.calls.filter((c) => c.name.startsWith(system.refreshSecret));

describe("a consumer across a real refresh", () => {
    it("recovers from the revoked cached token with exactly one re-read, and never reads the refresh-token secret", async () => {
        await system.authorize(); // the guide's first pair: versions 1, no annotations yet
        system.emulator.clearCalls();
        await b24.call("user.current");
        const cached = await b24.getAccessToken();
        expect(refreshSecretCalls()).toEqual([]);

        // The refresher's tick: no recorded expiry, so it refreshes; Bitrix24 revokes the cached token.
        expect(await system.deliver()).toMatchObject({ status: 204 });
        expect(system.sandbox.refreshCount()).toBe(1);
        expect(system.sandbox.isLiveAccessToken(cached)).toBe(false);
        expect(system.enabledVersions("access")).toEqual([1, 2]);

        system.emulator.clearCalls();
        const restBefore = system.sandbox.restCalls.length;
        const answer = await b24.call<{ ID: string }>("user.current");
        expect(answer.result.ID).toBe("1");
        expect(system.sandbox.restCalls.slice(restBefore).map((c) => [c.status, c.error ?? ""])).toEqual([
            [401, "expired_token"],
            [200, ""],
        ]);
        // Exactly one re-read: one payload access, of the new version by number.
        expect(consumerCalls().filter((c) => c.method === "AccessSecretVersion")).toEqual([
            { method: "AccessSecretVersion", name: `${system.accessSecret}/versions/2` },
        ]);
        expect(refreshSecretCalls()).toEqual([]);
        expect(consumerCalls().every((c) => c.name.startsWith(system.accessSecret))).toBe(true);
        expect(await b24.getAccessToken()).toBe(system.newestValue("access"));

        // The refresher published the new version's expiry: later calls use the cache, no reads at all.
        system.emulator.clearCalls();
        await b24.call("user.current");
        expect(consumerCalls()).toEqual([]);
        expect(captured.events.filter((e) => e.event === "token.read").at(-1)).toMatchObject({ version: 2, expirySource: "annotation", reason: "rejected" });
        expectNoSecrets(captured.lines, system.secretValues());
    });
});
