// End to end on the exact folder Pulumi uploads: dist/function/ under the real functions
// framework, the real Secret Manager client over gRPC to the emulator, real got to the sandbox.
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { expectNoSecrets } from "../helpers/no-secrets";
import { startTestSystem, type SystemOptions, type TestSystem } from "../helpers/system";

let system: TestSystem | undefined;

async function start(options: SystemOptions = {}): Promise<TestSystem> {
    system = await startTestSystem(options);
    return system;
}

afterEach(async () => {
    if (!system) return;
    const s = system;
    system = undefined;
    await s.stop();
    // Every test touches tokens: none of them may ever reach the function's output.
    expectNoSecrets(s.fn.lines, s.secretValues());
    expect(s.fn.lines.filter((line) => line.includes("loopback guard"))).toEqual([]);
});

const events = (s: TestSystem, event: string) => s.logEntries().filter((e) => e.event === event);
const severity = (s: TestSystem, level: string) => s.logEntries().filter((e) => e.severity === level);
const rpc = (s: TestSystem, method: string) => s.emulator.calls.filter((c) => c.method === method);

describe("refreshTokens on the built bundle", () => {
    it("refreshes a due token, reading by number and writing the refresh token before the access token", async () => {
        const s = await start();
        await s.authorize();
        s.emulator.clearCalls();

        const answer = await s.deliver();

        expect(answer.status).toBe(204);
        expect(s.sandbox.refreshCount()).toBe(1);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        expect(s.sandbox.isLiveAccessToken(s.newestValue("access")!)).toBe(true);
        const reads = rpc(s, "AccessSecretVersion");
        expect(reads.length).toBeGreaterThan(0);
        expect(reads.every((c) => /\/versions\/\d+$/.test(c.name))).toBe(true);
        const writes = rpc(s, "AddSecretVersion").map((c) => c.name);
        expect(writes).toEqual([s.refreshSecret, s.accessSecret]);
        expect(events(s, "refresh.succeeded")).toHaveLength(1);
        expect(events(s, "refresh.succeeded")[0]).toMatchObject({ severity: "NOTICE", refreshVersion: 2, accessVersion: 2 });
        expect(s.annotations()["b24-lease-holder"]).toBeUndefined();
        const published = s.emulator.inspect(s.accessSecret)!.annotations;
        expect(published["b24-access-version"]).toBe("2");
        expect(Date.parse(published["b24-access-expires-at"]!)).toBeGreaterThan(Date.now() + 3500_000);
    });

    it("makes no OAuth call for a second delivery inside the margin", async () => {
        const s = await start();
        await s.authorize();
        expect((await s.deliver()).status).toBe(204);
        const calls = s.sandbox.tokenCalls.length;

        expect((await s.deliver()).status).toBe(204);

        expect(s.sandbox.tokenCalls.length).toBe(calls);
        expect(events(s, "refresh.skipped").at(-1)).toMatchObject({ reason: "fresh" });
    });

    it("destroys versions beyond KEEP_VERSIONS, keeping the newest", async () => {
        // Access tokens that live 10 minutes are always inside the 20-minute margin: every delivery refreshes.
        const s = await start({ sandbox: { accessTtlSeconds: 600 }, env: { KEEP_VERSIONS: "2" } });
        await s.authorize();
        for (let i = 0; i < 4; i++) expect((await s.deliver()).status).toBe(204);

        expect(s.sandbox.refreshCount()).toBe(4);
        expect(s.enabledVersions("refresh")).toEqual([4, 5]);
        expect(s.enabledVersions("access")).toEqual([4, 5]);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        const destroyed = s.emulator.inspect(s.refreshSecret)!.versions.filter((v) => v.state === "DESTROYED");
        expect(destroyed.map((v) => v.number)).toEqual([1, 2, 3]);
    });

    it("answers 20 concurrent deliveries with exactly one OAuth refresh", async () => {
        const s = await start();
        await s.authorize();

        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => s.deliver(`storm-${i}`)));

        expect(s.sandbox.refreshCount()).toBe(1);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        expect(events(s, "refresh.succeeded")).toHaveLength(1);
        // Deliveries that met the lease while the refresh was due ask for redelivery (500) without
        // logging an error; the rest see the fresh token (204). Redelivered, all are done.
        expect(answers.every((a) => a.status === 204 || a.status === 500)).toBe(true);
        expect(severity(s, "ERROR")).toHaveLength(0);
        const redelivered = await Promise.all(answers.flatMap((a, i) => (a.status === 500 ? [s.deliver(`storm-${i}`)] : [])));
        expect(redelivered.every((a) => a.status === 204)).toBe(true);
        expect(s.sandbox.refreshCount()).toBe(1);
    });

    it("treats missing configuration as permanent: 2xx and one CRITICAL line naming the variable", async () => {
        const s = await start({ env: { B24_CLIENT_ID: "" } });
        await s.authorize();
        expect((await s.deliver()).status).toBe(204);
        const critical = severity(s, "CRITICAL");
        expect(critical).toHaveLength(1);
        expect(String(critical[0]!.message)).toMatch(/B24_CLIENT_ID is not set/);
        expect(s.sandbox.tokenCalls).toHaveLength(0);
    });
});

describe("fault matrix: Bitrix24", () => {
    async function expectTransientThenRecovery(s: TestSystem) {
        const failed = await s.deliver();
        expect(failed.status).toBe(500);
        expect(failed.error).toBe("error");
        expect(severity(s, "ERROR").length).toBeGreaterThan(0);
        expect(severity(s, "CRITICAL")).toHaveLength(0);
        const retried = await s.deliver();
        expect(retried.status).toBe(204);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        expect(events(s, "refresh.succeeded")).toHaveLength(1);
    }

    it("HTML 502 from a gateway → transient, chain intact", async () => {
        const s = await start();
        await s.authorize();
        s.sandbox.failNext({ kind: "html502" });
        await expectTransientThenRecovery(s);
    });

    it("a timeout after sending → transient, chain intact (the request is not blindly retried)", async () => {
        const s = await start();
        await s.authorize();
        s.sandbox.failNext({ kind: "slow", delayMs: 3500, consume: false });
        await expectTransientThenRecovery(s);
        const refreshCalls = s.sandbox.tokenCalls.filter((c) => c.grantType === "refresh_token");
        expect(refreshCalls).toHaveLength(2); // the slow one and the next tick's; no retry in between
    });

    it("malformed JSON → transient, chain intact", async () => {
        const s = await start();
        await s.authorize();
        s.sandbox.failNext({ kind: "malformed" });
        await expectTransientThenRecovery(s);
    });

    it("a success without refresh_token keeps the old refresh token", async () => {
        const s = await start();
        await s.authorize();
        s.sandbox.failNext({ kind: "no_refresh_token" });
        expect((await s.deliver()).status).toBe(204);
        expect(s.enabledVersions("refresh")).toEqual([1]);
        expect(s.enabledVersions("access")).toEqual([1, 2]);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        expect(s.sandbox.isLiveAccessToken(s.newestValue("access")!)).toBe(true);
    });

    it.each([
        ["200 with invalid_grant", { kind: "error200", error: "invalid_grant" } as const],
        ["400 invalid_grant", { kind: "invalid_grant400" } as const],
    ])("%s → 2xx, one CRITICAL, no OAuth call until re-authorization, then refreshing resumes", async (_name, fault) => {
        const s = await start();
        await s.authorize();
        s.sandbox.failNext(fault);

        expect((await s.deliver()).status).toBe(204);
        const critical = severity(s, "CRITICAL");
        expect(critical).toHaveLength(1);
        expect(String(critical[0]!.message)).toMatch(/re-authorization is needed.*npm run authorize/is);
        const callsAfterFailure = s.sandbox.tokenCalls.length;

        for (let i = 0; i < 3; i++) expect((await s.deliver()).status).toBe(204);
        expect(s.sandbox.tokenCalls.length).toBe(callsAfterFailure);
        expect(severity(s, "CRITICAL")).toHaveLength(1);

        await s.authorize(); // a re-authorization stores a new refresh-token version
        expect((await s.deliver()).status).toBe(204);
        expect(events(s, "refresh.succeeded")).toHaveLength(1);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
    });

    it("401 invalid_client → 2xx and one CRITICAL line that names the credential fix", async () => {
        const s = await start();
        await s.authorize();
        s.sandbox.failNext({ kind: "invalid_client401" });
        expect((await s.deliver()).status).toBe(204);
        const critical = severity(s, "CRITICAL");
        expect(critical).toHaveLength(1);
        expect(String(critical[0]!.message)).toMatch(/pulumi config set --secret clientSecret/);
    });
});

describe("fault matrix: Secret Manager", () => {
    it("UNAVAILABLE on read → 500, nothing sent to Bitrix24, the next tick succeeds", async () => {
        const s = await start();
        await s.authorize();
        s.emulator.injectFault({ method: "AccessSecretVersion", code: status.UNAVAILABLE, times: Infinity });
        const failed = await s.deliver();
        expect(failed.status).toBe(500);
        expect(s.sandbox.tokenCalls).toHaveLength(0);
        s.emulator.clearFaults();
        expect((await s.deliver()).status).toBe(204);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
    });

    it("a brief UNAVAILABLE on the first write is retried within the invocation", async () => {
        const s = await start();
        await s.authorize();
        s.emulator.injectFault({ method: "AddSecretVersion", code: status.UNAVAILABLE, times: 2, match: (name) => name.endsWith("b24-refresh-token") });
        expect((await s.deliver()).status).toBe(204);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        expect(events(s, "refresh.succeeded")).toHaveLength(1);
    });

    it("UNAVAILABLE on every try of the first write → the consumed token is reported once as CRITICAL, access token still stored", async () => {
        const s = await start();
        await s.authorize();
        s.emulator.injectFault({ method: "AddSecretVersion", code: status.UNAVAILABLE, times: Infinity, match: (name) => name.endsWith("b24-refresh-token") });
        expect((await s.deliver()).status).toBe(204);
        const critical = severity(s, "CRITICAL");
        expect(critical).toHaveLength(1);
        expect(String(critical[0]!.message)).toMatch(/re-authorization is needed/i);
        expect(s.sandbox.isLiveAccessToken(s.newestValue("access")!)).toBe(true);
        s.emulator.clearFaults();
        const calls = s.sandbox.tokenCalls.length;
        expect((await s.deliver()).status).toBe(204);
        expect(s.sandbox.tokenCalls.length).toBe(calls);
    });

    it("UNAVAILABLE on the second write → 500, the chain is intact, the next tick refreshes again", async () => {
        const s = await start();
        await s.authorize();
        s.emulator.injectFault({ method: "AddSecretVersion", code: status.UNAVAILABLE, times: Infinity, match: (name) => name.endsWith("b24-access-token") });
        expect((await s.deliver()).status).toBe(500);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        s.emulator.clearFaults();
        expect((await s.deliver()).status).toBe(204);
        expect(s.sandbox.refreshCount()).toBe(2);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
        expect(s.sandbox.isLiveAccessToken(s.newestValue("access")!)).toBe(true);
    });

    it("UNAVAILABLE on prune → success with a warning", async () => {
        const s = await start({ sandbox: { accessTtlSeconds: 600 }, env: { STORE_RETRY_BUDGET_SECONDS: "1" } });
        await s.authorize();
        s.emulator.injectFault({ method: "DestroySecretVersion", code: status.UNAVAILABLE, times: Infinity });
        for (let i = 0; i < 3; i++) expect((await s.deliver()).status).toBe(204);
        expect(events(s, "refresh.succeeded")).toHaveLength(3);
        expect(severity(s, "WARNING").length).toBeGreaterThan(0);
        expect(s.newestValue("refresh")).toBe(s.sandbox.liveRefreshToken());
    });
});
