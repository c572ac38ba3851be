import { beforeEach, describe, expect, it } from "vitest";
import { LeaseBusyError, refreshTokens, TransientRefreshError, type RefreshSettings } from "../../function/core/refresh-tokens";
import { annotationKeys, parseRefreshState } from "../../function/core/refresh-state";
import { CapturedLog, FakeClock, FakeOAuth, FakeTokenStore } from "../helpers/fakes";
import { errorTexts, expectNoSecrets } from "../helpers/no-secrets";

const initialRefresh = `refresh-token-0-${"r".repeat(40)}`;
const initialAccess = `access-token-0-${"a".repeat(40)}`;

let clock: FakeClock;
let store: FakeTokenStore;
let oauth: FakeOAuth;
let log: CapturedLog;
let holderCounter = 0;
const thrown: unknown[] = [];

function settings(overrides: Partial<RefreshSettings> = {}): RefreshSettings {
    return {
        marginSeconds: 1200,
        keepVersions: 2,
        leaseSeconds: 300,
        holder: `test-holder-${++holderCounter}`,
        criticalRepeatSeconds: 3600,
        hints: { reauthorize: "run `npm run authorize -- --project demo`" },
        ...overrides,
    };
}

async function run(overrides: Partial<RefreshSettings> = {}) {
    try {
        return await refreshTokens({ store, oauth, clock, log }, settings(overrides));
    } catch (error) {
        thrown.push(error);
        throw error;
    }
}

function state() {
    return parseRefreshState(store.annotations);
}

beforeEach(() => {
    clock = new FakeClock();
    store = new FakeTokenStore();
    oauth = new FakeOAuth(clock, initialRefresh);
    log = new CapturedLog();
    thrown.length = 0;
    store.seed("refresh", initialRefresh);
    store.seed("access", initialAccess);
});

function expectCleanLogs() {
    expectNoSecrets([...log.lines(), ...thrown.flatMap(errorTexts)], [initialRefresh, initialAccess, ...oauth.issued, ...oauth.received]);
}

describe("refreshTokens: deciding", () => {
    it("refreshes when no expiry is recorded, writing the refresh token before the access token", async () => {
        const outcome = await run();
        expect(outcome).toMatchObject({ kind: "refreshed", reason: "no_recorded_expiry", refreshVersion: 2, accessVersion: 2 });
        const writes = store.calls.filter((c) => c.startsWith("addVersion"));
        expect(writes).toEqual(["addVersion:refresh", "addVersion:access"]);
        expect(store.latestValue("refresh")).toBe(oauth.live);
        expect(state().pair).toMatchObject({ refreshVersion: 2, accessVersion: 2, accessExpiresAt: clock.now() + 3600_000 });
        expect(state().lease).toBeUndefined();
        expect(log.byEvent("refresh.succeeded")).toHaveLength(1);
        expectCleanLogs();
    });

    it("publishes the current access-token version and its expiry for consumers", async () => {
        await run();
        expect(store.accessInfo).toEqual({ version: 2, expiresAtMs: clock.now() + 3600_000 });
    });

    it("only warns when the access-token secret cannot be annotated", async () => {
        store.fail("describeAccessToken", "unavailable");
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
        expect(log.bySeverity("WARNING")[0]!.message).toMatch(/Could not annotate the access-token secret/);
        expectCleanLogs();
    });

    it("reads the refresh token by version number, never a moving alias", async () => {
        await run();
        expect(store.calls).toContain("readVersion:refresh");
        expect(oauth.received).toEqual([initialRefresh]);
    });

    it("does not call Bitrix24 while the access token has more than the margin left", async () => {
        await run();
        clock.advance(60 * 30); // 30 minutes later: 30 minutes left > 20-minute margin
        log.clear();
        const outcome = await run();
        expect(outcome).toEqual({ kind: "fresh", secondsLeft: 1800 });
        expect(oauth.received).toHaveLength(1);
        expect(log.byEvent("refresh.skipped")[0]).toMatchObject({ reason: "fresh", severity: "INFO" });
        expect(state().lease).toBeUndefined();
        expectCleanLogs();
    });

    it("counts a delivery up to a minute late as on time: 19.5 minutes left is still fresh", async () => {
        await run();
        clock.advance(60 * 40 + 30);
        const outcome = await run();
        expect(outcome).toEqual({ kind: "fresh", secondsLeft: 1170 });
    });

    it("refreshes once less than the margin (less a minute of delivery jitter) is left", async () => {
        await run();
        clock.advance(60 * 42);
        const outcome = await run();
        expect(outcome).toMatchObject({ kind: "refreshed", reason: "near_expiry" });
        expect(oauth.received).toHaveLength(2);
        expectCleanLogs();
    });

    it("refreshes when someone stored a newer refresh token than the recorded pair", async () => {
        await run();
        store.seed("refresh", oauth.live); // e.g. written by hand with gcloud
        const outcome = await run();
        expect(outcome).toMatchObject({ kind: "refreshed", reason: "new_refresh_token" });
        expectCleanLogs();
    });

    it("uses the recorded version when a lagging list does not show it yet", async () => {
        await run();
        store.listLag.refresh = 1; // the list still shows only version 1 (already used)
        clock.advance(60 * 45);
        const outcome = await run();
        expect(outcome).toMatchObject({ kind: "refreshed" });
        expect(oauth.received[1]).not.toBe(initialRefresh);
        expectCleanLogs();
    });
});

describe("refreshTokens: the lease", () => {
    function leaseHeldBy(holder: string, seconds = 60) {
        store.annotations[annotationKeys.leaseHolder] = holder;
        store.annotations[annotationKeys.leaseExpiresAt] = new Date(clock.now() + seconds * 1000).toISOString();
    }

    it("leaves the refresh to the holder of a live lease when nothing is due (2xx)", async () => {
        await run();
        clock.advance(600);
        leaseHeldBy("someone-else");
        log.clear();
        const outcome = await run();
        expect(outcome).toEqual({ kind: "lease_busy" });
        expect(oauth.received).toHaveLength(1);
        expect(store.annotations[annotationKeys.leaseHolder]).toBe("someone-else");
        expect(log.byEvent("refresh.skipped")[0]).toMatchObject({ severity: "INFO", reason: "lease_busy", redeliver: false });
    });

    it("asks for redelivery (throws, logging no error) when the lease is busy while a refresh is due", async () => {
        leaseHeldBy("someone-else");
        await expect(run()).rejects.toBeInstanceOf(LeaseBusyError);
        expect(oauth.received).toHaveLength(0);
        expect(log.byEvent("refresh.skipped")[0]).toMatchObject({ severity: "INFO", reason: "lease_busy", redeliver: true });
        expect(log.bySeverity("ERROR")).toHaveLength(0);
        // Once the holder's lease has expired (it crashed), the redelivery refreshes.
        clock.advance(61);
        expect((await run()).kind).toBe("refreshed");
    });

    it("takes over a lease whose holder crashed (expired)", async () => {
        leaseHeldBy("crashed", -1);
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
        expect(state().lease).toBeUndefined();
    });

    it("backs off when another invocation wins the compare-and-set", async () => {
        const original = store.writeMeta.bind(store);
        store.writeMeta = async (etag, annotations) => {
            leaseHeldBy("the-winner"); // someone else took the lease between our read and our write
            store.bumpEtag();
            store.writeMeta = original;
            return original(etag, annotations);
        };
        await expect(run()).rejects.toBeInstanceOf(LeaseBusyError);
        expect(oauth.received).toHaveLength(0);
        expect(store.annotations[annotationKeys.leaseHolder]).toBe("the-winner");
    });

    it("goes on when its own lease write landed but the answer was lost", async () => {
        const original = store.writeMeta.bind(store);
        store.writeMeta = async (etag, annotations) => {
            store.writeMeta = original;
            await original(etag, annotations); // the write lands…
            return null; // …but the client's retry, with the old etag, reports a stale etag
        };
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
        expect(state().lease).toBeUndefined();
        expect(log.bySeverity("WARNING")).toHaveLength(0);
    });

    it("releases quietly when the release landed but its answer was lost", async () => {
        const original = store.writeMeta.bind(store);
        let n = 0;
        store.writeMeta = async (etag, annotations) => {
            n += 1;
            const written = await original(etag, annotations);
            return n === 2 ? null : written;
        };
        expect((await run()).kind).toBe("refreshed");
        expect(state().lease).toBeUndefined();
        expect(state().pair?.refreshVersion).toBe(2);
        expect(log.bySeverity("WARNING")).toHaveLength(0);
    });

    it("keeps foreign annotations", async () => {
        store.annotations["team"] = "crm";
        await run();
        expect(store.annotations["team"]).toBe("crm");
    });

    it("throws a transient error when the lease cannot be written", async () => {
        store.fail("writeMeta", "unavailable", 1);
        await expect(run()).rejects.toBeInstanceOf(TransientRefreshError);
        expect(oauth.received).toHaveLength(0);
    });

    it("warns, but still succeeds, when the lease was taken over before it was released", async () => {
        const original = store.writeMeta.bind(store);
        let n = 0;
        store.writeMeta = async (etag, annotations) => {
            n += 1;
            if (n === 2) {
                leaseHeldBy("the-next-holder");
                store.bumpEtag();
            }
            return original(etag, annotations);
        };
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
        expect(log.bySeverity("WARNING").map((e) => e.message).join()).toMatch(/lease expired and was taken over/);
    });
});

describe("refreshTokens: Bitrix24 answers", () => {
    it("keeps the old refresh token when none is returned", async () => {
        oauth.failNext("no_refresh_token");
        const outcome = await run();
        expect(outcome).toMatchObject({ kind: "refreshed", refreshVersion: 1, accessVersion: 2 });
        expect(store.calls.filter((c) => c === "addVersion:refresh")).toHaveLength(0);
        expect(log.byEvent("refresh.succeeded")[0]).toMatchObject({ refreshTokenRotated: false });
        expectCleanLogs();
    });

    it("retries once with a newer refresh token that appeared before declaring invalid_grant permanent", async () => {
        oauth.failNext({ code: "invalid_grant", permanent: true, sent: true, status: 400 });
        const newer = `refresh-token-newer-${"n".repeat(40)}`;
        oauth.live = newer;
        const original = oauth.refresh.bind(oauth);
        oauth.refresh = async (token) => {
            if (store.enabled("refresh").length === 1) store.seed("refresh", newer);
            return original(token);
        };
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
        expect(oauth.received).toEqual([initialRefresh, newer]);
        expectNoSecrets(log.lines(), [newer, ...oauth.issued]);
    });

    it("records invalid_grant, stops calling Bitrix24, repeats CRITICAL hourly, and resumes after re-authorization", async () => {
        oauth.live = "something-else-entirely";
        const first = await run();
        expect(first).toEqual({ kind: "needs_attention", code: "invalid_grant" });
        const critical = log.bySeverity("CRITICAL");
        expect(critical).toHaveLength(1);
        expect(critical[0]!.message).toMatch(/re-authorization is needed/i);
        expect(critical[0]!.message).toMatch(/npm run authorize/);
        expect(state().failure).toMatchObject({ code: "invalid_grant", refreshVersion: 1 });

        clock.advance(600);
        await run();
        clock.advance(600);
        await run();
        expect(oauth.received).toHaveLength(1); // no OAuth call while waiting
        expect(log.bySeverity("CRITICAL")).toHaveLength(1);

        clock.advance(3600);
        await run();
        expect(log.bySeverity("CRITICAL")).toHaveLength(2);
        expect(oauth.received).toHaveLength(1);

        const reauthorized = `refresh-token-reauth-${"z".repeat(40)}`;
        oauth.live = reauthorized;
        store.seed("refresh", reauthorized);
        const resumed = await run();
        expect(resumed.kind).toBe("refreshed");
        expect(state().failure).toBeUndefined();
        expectNoSecrets(log.lines(), [reauthorized, initialRefresh, ...oauth.issued]);
    });

    it.each([
        ["invalid_client", /pulumi config set --secret clientSecret/],
        ["payment_required", /subscription/],
        ["expired_token", /re-authorization is needed/i],
    ] as const)("treats %s as permanent with a message that names the fix", async (code, fix) => {
        oauth.failNext({ code, permanent: true, sent: true, status: 401 });
        const outcome = await run();
        expect(outcome).toEqual({ kind: "needs_attention", code });
        const critical = log.bySeverity("CRITICAL");
        expect(critical).toHaveLength(1);
        expect(critical[0]!.message).toMatch(fix);
        expect(critical[0]!.event).toBe("refresh.reauthorization_needed");
        expectCleanLogs();
    });

    it.each([
        ["server_error", 502],
        ["timeout", undefined],
        ["bad_response", 200],
        ["rate_limited", 429],
        ["network", undefined],
    ] as const)("treats %s as transient: throws, keeps state, releases the lease", async (code, status) => {
        oauth.failNext({ code, permanent: false, sent: code !== "network", status });
        await expect(run()).rejects.toMatchObject({ name: "TransientRefreshError", code: `oauth_${code}` });
        expect(store.enabled("refresh")).toEqual([1]);
        expect(state().lease).toBeUndefined();
        expect(state().failure).toBeUndefined();
        expect(log.bySeverity("ERROR")).toHaveLength(1);
        expect(log.bySeverity("CRITICAL")).toHaveLength(0);
        // The chain is intact: the next tick refreshes with the same token.
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
        expectCleanLogs();
    });
});

describe("refreshTokens: Secret Manager failures", () => {
    it("throws a transient error when Secret Manager is unavailable on read", async () => {
        store.fail("readVersion", "unavailable");
        await expect(run()).rejects.toMatchObject({ code: "store_unavailable" });
        expect(oauth.received).toHaveLength(0);
        expect(state().lease).toBeUndefined();
        expectCleanLogs();
    });

    it("throws a transient error when the secret metadata cannot be read", async () => {
        store.fail("readMeta", "unavailable");
        await expect(run()).rejects.toBeInstanceOf(TransientRefreshError);
    });

    it("reports a missing secret or role as CRITICAL and does not throw", async () => {
        store.fail("readMeta", "permission_denied");
        const outcome = await run();
        expect(outcome).toEqual({ kind: "needs_attention", code: "store_misconfigured" });
        expect(log.bySeverity("CRITICAL")[0]!.message).toMatch(/pulumi up/);
    });

    it("reports a lost refresh token once when its write fails after every retry, and still stores the access token", async () => {
        store.fail("addVersion", "unavailable", 1, "refresh");
        const outcome = await run();
        expect(outcome).toEqual({ kind: "needs_attention", code: "refresh_token_lost" });
        const critical = log.bySeverity("CRITICAL");
        expect(critical).toHaveLength(1);
        expect(critical[0]!.message).toMatch(/re-authorization is needed/i);
        expect(store.enabled("access")).toEqual([1, 2]);
        expect(state().failure).toMatchObject({ code: "refresh_token_lost", refreshVersion: 1 });
        clock.advance(600);
        await run();
        expect(oauth.received).toHaveLength(1);
        expectCleanLogs();
    });

    it("keeps the chain when the access-token write fails: throws, and the next tick refreshes again", async () => {
        store.fail("addVersion", "unavailable", 1, "access");
        await expect(run()).rejects.toMatchObject({ code: "access_token_not_stored" });
        expect(store.latestValue("refresh")).toBe(oauth.live);
        expect(state().pair).toEqual({ refreshVersion: 2 });
        const outcome = await run();
        expect(outcome).toMatchObject({ kind: "refreshed", reason: "no_recorded_expiry" });
        expect(store.latestValue("access")).toBeDefined();
        expectCleanLogs();
    });

    it("warns but succeeds when pruning fails", async () => {
        store.fail("destroyVersion", "unavailable", 2);
        for (let i = 0; i < 3; i++) {
            await run();
            clock.advance(3000);
        }
        expect(log.byEvent("refresh.succeeded")).toHaveLength(3);
        expect(log.bySeverity("WARNING").length).toBeGreaterThan(0);
        expectCleanLogs();
    });
});

describe("refreshTokens: pruning", () => {
    it("keeps the newest KEEP_VERSIONS enabled versions of each secret and destroys older ones", async () => {
        for (let i = 0; i < 4; i++) {
            await run({ keepVersions: 2 });
            clock.advance(3000);
        }
        expect(store.enabled("refresh")).toEqual([4, 5]);
        expect(store.enabled("access")).toEqual([4, 5]);
        expect(store.latestValue("refresh")).toBe(oauth.live);
    });

    it("never destroys the version it just wrote, even with KEEP_VERSIONS=1", async () => {
        await run({ keepVersions: 1 });
        expect(store.enabled("refresh")).toEqual([2]);
        expect(store.enabled("access")).toEqual([2]);
    });

    it("rejects a KEEP_VERSIONS below 1 before touching anything", async () => {
        await expect(run({ keepVersions: 0 })).rejects.toBeInstanceOf(RangeError);
        expect(store.calls).toEqual([]);
    });
});

describe("refreshTokens: before the first authorization", () => {
    it("says CRITICAL that authorization is needed, at most once an hour, without calling Bitrix24", async () => {
        store = new FakeTokenStore();
        const first = await run();
        expect(first).toEqual({ kind: "needs_attention", code: "not_authorized" });
        expect(log.bySeverity("CRITICAL")[0]!.message).toMatch(/not been authorized.*npm run authorize/s);
        clock.advance(600);
        await run();
        expect(log.bySeverity("CRITICAL")).toHaveLength(1);
        clock.advance(3600);
        await run();
        expect(log.bySeverity("CRITICAL")).toHaveLength(2);
        expect(oauth.received).toHaveLength(0);
        store.seed("refresh", initialRefresh);
        const outcome = await run();
        expect(outcome.kind).toBe("refreshed");
    });
});
