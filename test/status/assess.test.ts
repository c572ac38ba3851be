// The status decision on hand-made snapshots: every state, where the expiry comes from, and the
// hints for a real project.
import { describe, expect, it } from "vitest";
import { withRefreshState, type RefreshState } from "../../function/core/refresh-state";
import { assess, exitCodes, humanDuration } from "../../status/assess";
import { renderHuman } from "../../status/render";
import type { SecretSnapshot, Snapshot, VersionInfo } from "../../status/snapshot";

const now = Date.parse("2026-01-04T20:00:00Z");
const minute = 60_000;
const options = { nowMs: now, staleBelowMs: 5 * minute, prefix: "b24" };

function secret(id: string, versions: VersionInfo[] = [], annotations: Record<string, string> = {}): SecretSnapshot {
    return { id, exists: true, annotations, versions: [...versions].sort((a, b) => b.number - a.number) };
}

function snapshot(parts: { access?: VersionInfo[]; refresh?: VersionInfo[]; accessAnnotations?: Record<string, string>; state?: RefreshState }): Snapshot {
    return {
        projectId: "my-project",
        secrets: {
            clientId: secret("b24-client-id", [{ number: 1, state: "ENABLED", createdAt: now - 86_400_000 }]),
            clientSecret: secret("b24-client-secret", [{ number: 1, state: "ENABLED", createdAt: now - 86_400_000 }]),
            access: secret("b24-access-token", parts.access ?? [], parts.accessAnnotations ?? {}),
            refresh: secret("b24-refresh-token", parts.refresh ?? [], parts.state ? withRefreshState({}, parts.state) : {}),
        },
    };
}

const enabled = (number: number, createdAt: number): VersionInfo => ({ number, state: "ENABLED", createdAt });

describe("assess", () => {
    it("estimates the expiry from the version's creation when nothing was recorded (the guide's first pair)", () => {
        const report = assess(snapshot({ access: [enabled(1, now - 10 * minute)], refresh: [enabled(1, now - 10 * minute)] }), options);
        expect(report).toMatchObject({ state: "healthy", exitCode: 0, accessToken: { version: 1, expirySource: "estimated", secondsLeft: 50 * 60 } });
        expect(renderHuman(report)).toMatch(/\(estimated: created \+ 1 h\)/);
    });

    it("prefers the access secret's annotation, then the refresh secret's record of the pair", () => {
        const access = [enabled(3, now - 5 * minute), { number: 2, state: "DESTROYED" as const, createdAt: now - 65 * minute }];
        const refresh = [enabled(3, now - 5 * minute)];
        const state: RefreshState = { pair: { refreshVersion: 3, accessVersion: 3, accessExpiresAt: now + 30 * minute } };
        expect(assess(snapshot({ access, refresh, state }), options).accessToken).toMatchObject({ secondsLeft: 30 * 60, expirySource: "annotation" });
        const annotated = { "b24-access-version": "3", "b24-access-expires-at": new Date(now + 40 * minute).toISOString() };
        const report = assess(snapshot({ access, refresh, state, accessAnnotations: annotated }), options);
        expect(report.accessToken).toMatchObject({ secondsLeft: 40 * 60, expirySource: "annotation" });
        expect(report.secrets.find((s) => s.id === "b24-access-token")).toEqual({ id: "b24-access-token", exists: true, enabled: 1, disabled: 0, destroyed: 1, newest: 3 });
    });

    it("an annotation about an older version does not count", () => {
        const stale = { "b24-access-version": "1", "b24-access-expires-at": new Date(now + 40 * minute).toISOString() };
        const report = assess(snapshot({ access: [enabled(2, now - 59 * minute)], refresh: [enabled(2, now - 59 * minute)], accessAnnotations: stale }), options);
        expect(report).toMatchObject({ state: "stale", accessToken: { version: 2, expirySource: "estimated", secondsLeft: 60 } });
    });

    it("stale and expired point a real project at the scheduler job and the function's logs", () => {
        const state: RefreshState = { pair: { refreshVersion: 1, accessVersion: 1, accessExpiresAt: now - minute } };
        const report = assess(snapshot({ access: [enabled(1, now - 61 * minute)], refresh: [enabled(1, now - 61 * minute)], state }), { ...options, prefix: "shop" });
        expect(report).toMatchObject({ state: "expired", exitCode: 1 });
        expect(report.fix).toMatch(/gcloud scheduler jobs describe shop-token-refresh-job --location <region> --project my-project/);
        expect(report.fix).toMatch(/gcloud functions logs read shop-token-refresh --gen2 --region <region> --project my-project/);
    });

    it("a refresh token without an access token is stale (the next tick stores one)", () => {
        expect(assess(snapshot({ refresh: [enabled(1, now)] }), options)).toMatchObject({ state: "stale", accessToken: null });
    });

    it("a failure recorded for an older refresh token is resolved, not active", () => {
        const state: RefreshState = {
            pair: { refreshVersion: 2, accessVersion: 2, accessExpiresAt: now + 45 * minute },
            failure: { code: "invalid_grant", refreshVersion: 1, loggedAt: now - 90 * minute },
        };
        const report = assess(snapshot({ access: [enabled(2, now - 15 * minute)], refresh: [enabled(2, now - 15 * minute)], state }), options);
        expect(report).toMatchObject({ state: "healthy", lastFailure: { code: "invalid_grant", active: false } });
        expect(renderHuman(report)).toMatch(/resolved since \(a newer refresh token was stored\)/);
    });

    it("credentials failures say how to fix the credentials, and an expired lease is shown as such", () => {
        const state: RefreshState = {
            lease: { holder: "tick-1", expiresAt: now - minute },
            failure: { code: "invalid_client", refreshVersion: 1, loggedAt: now - minute },
        };
        const report = assess(snapshot({ access: [enabled(1, now)], refresh: [enabled(1, now)], state }), options);
        expect(report).toMatchObject({ state: "refresh_failed", exitCode: 2, lease: { holder: "tick-1", expired: true } });
        expect(report.fix).toMatch(/pulumi config set --secret clientSecret/);
        expect(renderHuman(report)).toMatch(/expired, the next tick takes it over/);
    });

    it("exit codes: 0 healthy, 1 stale or expired, 2 needs authorization, 3 unreachable", () => {
        expect(exitCodes).toEqual({ healthy: 0, stale: 1, expired: 1, not_authorized: 2, refresh_failed: 2, unreachable: 3 });
    });

    it("durations read naturally", () => {
        expect([40_000, 5 * minute, 65 * minute, 120 * minute, 3 * 86_400_000].map(humanDuration)).toEqual(["40 s", "5 min", "1 h 5 min", "2 h", "3 days"]);
    });
});
