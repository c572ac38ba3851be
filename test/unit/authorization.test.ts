import { describe, expect, it } from "vitest";
import { escapeHtml, renderPage } from "../../function/adapters/html-page";
import {
    applicationTokenHash,
    applicationTokenMatches,
    callbackState,
    checkIssuedTokens,
    checkRedirect,
    isPortalDomain,
    liveTokens,
    normalizePortalDomain,
} from "../../function/core/authorization";
import type { IssuedTokens } from "../../function/core/ports";
import { StoreError } from "../../function/core/ports";
import { parseRefreshState, withRefreshState } from "../../function/core/refresh-state";
import { storeAuthorizedTokens, type StoreAuthorizationInput } from "../../function/core/store-authorization";
import { FakeClock, FakeTokenStore } from "../helpers/fakes";
import { expectNoSecrets } from "../helpers/no-secrets";

const portal = "example.bitrix24.com";
const member = "a223c6b3710f85df22e9377d6c4f7553";

const tokens = (over: Partial<IssuedTokens> = {}): IssuedTokens => ({
    accessToken: "access-token-value-0123456789",
    refreshToken: "refresh-token-value-0123456789",
    expiresAt: Math.floor(Date.UTC(2026, 11, 4, 13, 0, 0) / 1000),
    memberId: member,
    clientEndpoint: `https://${portal}/rest/`,
    ...over,
});

describe("portal names", () => {
    it.each([
        ["Example.Bitrix24.com", "example.bitrix24.com"],
        ["https://example.bitrix24.com/", "example.bitrix24.com"],
        ["example.bitrix24.com.", "example.bitrix24.com"],
        ["  http://example.bitrix24.com/marketplace/local/ ", "example.bitrix24.com"],
    ])("normalizes %j to %j", (raw, normalized) => {
        expect(normalizePortalDomain(raw)).toBe(normalized);
        expect(isPortalDomain(normalized)).toBe(true);
    });

    it.each(["", "<script>", "exa mple.com", "a..b", "-a.com"])("rejects %j", (raw) => {
        expect(isPortalDomain(normalizePortalDomain(raw))).toBe(false);
    });
});

describe("callbackState", () => {
    const base = { clientId: "local.1.2", clientSecret: "client-secret-value-xyz", portalDomain: portal };

    it("is deterministic, URL-safe, and depends on the secret, the client and the portal", () => {
        const s = callbackState(base);
        expect(s).toMatch(/^[A-Za-z0-9_-]{32}$/);
        expect(callbackState({ ...base, portalDomain: "HTTPS://Example.Bitrix24.com/" })).toBe(s);
        expect(callbackState({ ...base, clientSecret: "another-secret-value" })).not.toBe(s);
        expect(callbackState({ ...base, clientId: "local.1.3" })).not.toBe(s);
        expect(callbackState({ ...base, portalDomain: "other.bitrix24.com" })).not.toBe(s);
        expectNoSecrets([s], [base.clientSecret]);
    });
});

describe("checkRedirect (before the code is spent)", () => {
    const params = { code: "code-value-123456", state: "the-state", domain: portal, memberId: member };

    it("accepts the configured portal, whatever the case", () => {
        expect(checkRedirect({ ...params, domain: "EXAMPLE.bitrix24.com" }, { portalDomain: portal, expectedState: "the-state" })).toEqual({ ok: true });
    });

    it("refuses another state, and a missing one when required", () => {
        expect(checkRedirect({ ...params, state: "other" }, { portalDomain: portal, expectedState: "the-state" })).toMatchObject({ code: "bad_state" });
        expect(checkRedirect({ ...params, state: undefined }, { portalDomain: portal, expectedState: "the-state", stateRequired: true })).toMatchObject({
            code: "missing_state",
        });
        expect(checkRedirect({ ...params, state: undefined }, { portalDomain: portal, expectedState: "the-state" })).toEqual({ ok: true });
    });

    it("refuses another portal and another configured member_id", () => {
        expect(checkRedirect({ ...params, domain: "evil.bitrix24.com" }, { portalDomain: portal })).toEqual({
            ok: false,
            code: "wrong_portal",
            expected: portal,
            received: "evil.bitrix24.com",
        });
        expect(checkRedirect({ ...params, memberId: "other" }, { portalDomain: portal, memberId: member })).toMatchObject({ code: "wrong_member" });
    });

    it("has nothing to compare for a bare code", () => {
        expect(checkRedirect({ code: "code-value-123456" }, { portalDomain: portal, memberId: member, expectedState: "s" })).toEqual({ ok: true });
    });
});

describe("checkIssuedTokens (after the exchange)", () => {
    it("accepts an answer whose member_id matches the redirect's and the configured one", () => {
        expect(checkIssuedTokens(tokens(), { portalDomain: portal, memberId: member, redirectDomain: portal, redirectMemberId: member })).toEqual({ ok: true });
    });

    it("ignores the answer's domain (the OAuth server's host) and client_endpoint when the redirect vouched for the portal", () => {
        const answer = tokens({ domain: "oauth.bitrix.info", clientEndpoint: "http://127.0.0.1:4000/rest/" });
        expect(checkIssuedTokens(answer, { portalDomain: portal, redirectDomain: portal, redirectMemberId: member })).toEqual({ ok: true });
    });

    it("refuses an answer without a refresh token", () => {
        expect(checkIssuedTokens(tokens({ refreshToken: undefined }), { portalDomain: portal, redirectDomain: portal })).toMatchObject({
            code: "no_refresh_token",
        });
    });

    it("refuses a member_id that differs from the redirect's or the configured one", () => {
        expect(checkIssuedTokens(tokens(), { portalDomain: portal, redirectDomain: portal, redirectMemberId: "other" })).toMatchObject({
            code: "wrong_member",
            expected: "other",
            received: member,
        });
        expect(checkIssuedTokens(tokens({ memberId: undefined }), { portalDomain: portal, memberId: member })).toMatchObject({ code: "wrong_member" });
    });

    it("for a bare code, needs the answer's REST address to be the portal's", () => {
        expect(checkIssuedTokens(tokens(), { portalDomain: portal })).toEqual({ ok: true });
        expect(checkIssuedTokens(tokens({ clientEndpoint: "https://evil.bitrix24.com/rest/" }), { portalDomain: portal })).toMatchObject({
            code: "unverifiable_portal",
            received: "evil.bitrix24.com",
        });
        expect(checkIssuedTokens(tokens({ clientEndpoint: undefined }), { portalDomain: portal })).toMatchObject({ code: "unverifiable_portal" });
    });
});

describe("liveTokens", () => {
    const now = Date.UTC(2026, 11, 4, 12, 0, 0);
    it("is live with a recorded expiry ahead and no failure", () => {
        expect(liveTokens({ pair: { refreshVersion: 3, accessVersion: 3, accessExpiresAt: now + 600_000 } }, now)).toEqual({
            live: true,
            refreshVersion: 3,
            accessVersion: 3,
            secondsLeft: 600,
        });
    });
    it.each([
        ["nothing recorded", {}, "none_recorded"],
        ["no expiry recorded", { pair: { refreshVersion: 1 } }, "none_recorded"],
        ["an expiry in the past", { pair: { refreshVersion: 1, accessExpiresAt: now - 1 } }, "expired"],
        [
            "a recorded failure",
            { pair: { refreshVersion: 1, accessExpiresAt: now + 600_000 }, failure: { code: "invalid_grant", refreshVersion: 1, loggedAt: now } },
            "failure_recorded",
        ],
    ] as const)("is not live with %s", (_name, state, reason) => {
        expect(liveTokens(state, now)).toMatchObject({ live: false, reason });
    });
});

describe("application_token", () => {
    it("is recorded as a hash and compared against it", () => {
        const token = "51856fefc120afa4b628cc82d3935cce";
        const annotations = { "b24-application-token-sha256": applicationTokenHash(token) };
        expect(applicationTokenHash(token)).toMatch(/^[0-9a-f]{64}$/);
        expect(applicationTokenMatches(annotations, token)).toBe(true);
        expect(applicationTokenMatches(annotations, "another-token-value")).toBe(false);
        expect(applicationTokenMatches({}, token)).toBe(false);
        expectNoSecrets([JSON.stringify(annotations)], [token]);
    });
});

describe("the callback page", () => {
    it("escapes every value", () => {
        const html = renderPage({ title: "<b>t</b>", paragraphs: [`portal "><script>alert(1)</script>`] });
        expect(html).not.toMatch(/<script>|<b>/);
        expect(html).toContain("&#60;script&#62;");
        expect(escapeHtml(`&<>"'/`)).toBe("&#38;&#60;&#62;&#34;&#39;&#47;");
    });
});

describe("storeAuthorizedTokens", () => {
    const input = (over: Partial<StoreAuthorizationInput> = {}): StoreAuthorizationInput => ({
        tokens: tokens(),
        via: "cli",
        holder: "authorize-cli/test",
        leaseSeconds: 60,
        leaseWaitMs: 5_000,
        ...over,
    });

    function setup() {
        const clock = new FakeClock();
        const store = new FakeTokenStore();
        const sleep = async (ms: number) => clock.advance(ms / 1000);
        return { clock, store, ports: { store, clock, sleep } };
    }

    it("writes under the lease, refresh token first, then records the pair, clears a failure and keeps foreign annotations", async () => {
        const { clock, store, ports } = setup();
        store.seed("refresh", "old-refresh-token-value");
        store.annotations = withRefreshState(
            { "team/owner": "ops" },
            { pair: { refreshVersion: 1 }, failure: { code: "invalid_grant", refreshVersion: 1, loggedAt: clock.now() - 1000 } },
        );

        const stored = await storeAuthorizedTokens(ports, input({ applicationTokenSha256: "ab".repeat(32), via: "install" }));

        expect(stored).toEqual({ refreshVersion: 2, accessVersion: 1, expiresAtMs: tokens().expiresAt * 1000, leaseHeld: true, recorded: true, warnings: [] });
        expect(store.calls).toEqual([
            "readMeta",
            "writeMeta",
            "addVersion:refresh",
            "addVersion:access",
            "describeAccessToken",
            "readMeta",
            "writeMeta",
        ]);
        expect(store.accessInfo).toEqual({ version: 1, expiresAtMs: tokens().expiresAt * 1000 });
        const state = parseRefreshState(store.annotations);
        expect(state).toEqual({ pair: { refreshVersion: 2, accessVersion: 1, accessExpiresAt: tokens().expiresAt * 1000, refreshedAt: clock.now() } });
        expect(store.annotations).toMatchObject({
            "team/owner": "ops",
            "b24-authorized-via": "install",
            "b24-member-id": member,
            "b24-application-token-sha256": "ab".repeat(32),
        });
        expect(store.latestValue("refresh")).toBe(tokens().refreshToken);
    });

    it("waits for a refresher that holds the lease, then takes it", async () => {
        const { clock, store, ports } = setup();
        store.annotations = withRefreshState({}, { lease: { holder: "refresher/1", expiresAt: clock.now() + 2_000 } });

        const stored = await storeAuthorizedTokens(ports, input());

        expect(stored.leaseHeld).toBe(true);
        expect(stored.warnings).toEqual([]);
        expect(store.calls.filter((c) => c === "readMeta").length).toBeGreaterThan(2);
        expect(parseRefreshState(store.annotations).lease).toBeUndefined();
    });

    it("writes without the lease when it stays busy, keeping the other holder's lease", async () => {
        const { clock, store, ports } = setup();
        const lease = { holder: "refresher/stuck", expiresAt: clock.now() + 300_000 };
        store.annotations = withRefreshState({}, { lease });

        const stored = await storeAuthorizedTokens(ports, input());

        expect(stored).toMatchObject({ leaseHeld: false, recorded: true, refreshVersion: 1, accessVersion: 1 });
        expect(stored.warnings).toEqual([expect.stringMatching(/held its lease for more than 5 s/)]);
        expect(parseRefreshState(store.annotations)).toMatchObject({ lease, pair: { refreshVersion: 1, accessVersion: 1 } });
    });

    it("retries the record when someone else wrote the annotations meanwhile", async () => {
        const { store, ports } = setup();
        const originalWrite = store.writeMeta.bind(store);
        let writes = 0;
        store.writeMeta = async (etag, annotations) => {
            if (++writes === 2) store.bumpEtag(); // a refresher tick wrote between our read and our record
            return originalWrite(etag, annotations);
        };

        const stored = await storeAuthorizedTokens(ports, input());

        expect(stored).toMatchObject({ recorded: true, warnings: [] });
        expect(writes).toBe(3);
        expect(parseRefreshState(store.annotations).pair).toMatchObject({ refreshVersion: 1 });
    });

    it("throws when the refresh token cannot be stored, writing no access token and releasing the lease", async () => {
        const { store, ports } = setup();
        store.fail("addVersion", "unavailable", 1, "refresh");

        await expect(storeAuthorizedTokens(ports, input())).rejects.toBeInstanceOf(StoreError);

        expect(store.versions.access).toEqual([]);
        expect(parseRefreshState(store.annotations)).toEqual({});
    });

    it("records the refresh token alone when the access token cannot be stored (the refresher issues one)", async () => {
        const { store, ports } = setup();
        store.fail("addVersion", "unavailable", 1, "access");

        const stored = await storeAuthorizedTokens(ports, input());

        expect(stored).toMatchObject({ refreshVersion: 1, accessVersion: undefined, recorded: true });
        expect(stored.warnings).toEqual([expect.stringMatching(/access token was not stored/)]);
        expect(parseRefreshState(store.annotations).pair).toEqual({ refreshVersion: 1, refreshedAt: expect.any(Number) });
        expectNoSecrets(stored.warnings, [tokens().accessToken, tokens().refreshToken]);
    });
});
