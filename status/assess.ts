// The state of a deployment, decided from a snapshot of its secrets' metadata. Pure: decisions are
// data (state, exit code, summary, fix), tested without Secret Manager.
import { permanentFailureMessage, type PermanentFailureCode } from "../function/core/failure-messages";
import { accessAnnotationKeys, parseRefreshState } from "../function/core/refresh-state";
import type { SecretRole, SecretSnapshot, Snapshot, VersionInfo } from "./snapshot";

export type StatusState = "healthy" | "stale" | "expired" | "not_authorized" | "refresh_failed" | "unreachable";

/** Exit codes of `npm run status`; documented in --help and the README. */
export const exitCodes: Record<StatusState, number> = {
    healthy: 0,
    stale: 1,
    expired: 1,
    not_authorized: 2,
    refresh_failed: 2,
    unreachable: 3,
};
export const usageExitCode = 64;

/** Bitrix24 access tokens live one hour: the fallback expiry when none was recorded. */
const accessLifetimeMs = 3600_000;

export interface AssessOptions {
    nowMs: number;
    /** Stale below this much time left. A working refresher keeps at least 10 minutes (margin = longest gap + 10 min). */
    staleBelowMs: number;
    /** The portal's name prefix, for the job and function names in hints. */
    prefix: string;
    /** Set when reading an emulator: hints then point at the local tools. */
    emulatorHost?: string;
}

export interface StatusReport {
    state: StatusState;
    exitCode: number;
    /** One line: what is going on. */
    summary: string;
    /** What to run or check, when not healthy. */
    fix: string | null;
    project: string;
    emulatorHost: string | null;
    checkedAt: string;
    accessToken: {
        version: number;
        expiresAt: string;
        secondsLeft: number;
        /** `annotation`: recorded by the refresher; `estimated`: the version's creation + 1 h. */
        expirySource: "annotation" | "estimated";
        issuedAt: string | null;
        ageSeconds: number | null;
    } | null;
    refreshToken: { version: number; storedAt: string | null; ageSeconds: number | null } | null;
    lastRefreshAt: string | null;
    lease: { holder: string; expiresAt: string; expired: boolean } | null;
    lastFailure: { code: string; refreshVersion: number; loggedAt: string; active: boolean; message: string } | null;
    secrets: Array<{ id: string; exists: boolean; enabled: number; disabled: number; destroyed: number; newest: number | null }>;
}

const iso = (ms: number) => new Date(ms).toISOString();
const newestEnabled = (secret: SecretSnapshot): VersionInfo | undefined => secret.versions.find((v) => v.state === "ENABLED");

function positiveInt(value: string | undefined): number | undefined {
    const n = Number(value);
    return value !== undefined && /^\d+$/.test(value) && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function time(value: string | undefined): number | undefined {
    const ms = value === undefined ? NaN : Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
}

/** "52 min", "1 h 5 min", "3 days", "40 s". */
export function humanDuration(ms: number): string {
    const s = Math.round(Math.abs(ms) / 1000);
    if (s < 90) return `${s} s`;
    const min = Math.round(s / 60);
    if (min < 60) return `${min} min`;
    if (min < 48 * 60) return min % 60 === 0 ? `${Math.floor(min / 60)} h` : `${Math.floor(min / 60)} h ${min % 60} min`;
    return `${Math.round(min / (24 * 60))} days`;
}

function authorizeCommand(project: string): string {
    return `npm run authorize -- --project ${project}`;
}

function staleFix(project: string, options: AssessOptions): string {
    if (options.emulatorHost) {
        return "Nothing is refreshing the token in this emulator: check that the local refresher (`npm start`) is running and its ticks succeed.";
    }
    const p = options.prefix;
    return (
        "The refresher has not refreshed in time. Check the scheduler job and the function's logs: " +
        `\`gcloud scheduler jobs describe ${p}-token-refresh-job --location <region> --project ${project}\` and ` +
        `\`gcloud functions logs read ${p}-token-refresh --gen2 --region <region> --project ${project} --limit 50\`.`
    );
}

export function assess(snapshot: Snapshot, options: AssessOptions): StatusReport {
    const { nowMs } = options;
    const project = snapshot.projectId;
    const { access, refresh } = snapshot.secrets;
    const state = parseRefreshState(refresh.annotations);
    const refreshNewest = newestEnabled(refresh);
    const accessNewest = newestEnabled(access);

    // When does the newest access token expire? The access secret's annotation, the refresh
    // secret's record of the pair, or the version's creation + 1 h, in that order.
    let accessToken: StatusReport["accessToken"] = null;
    if (accessNewest) {
        const annotatedVersion = positiveInt(access.annotations[accessAnnotationKeys.version]);
        const annotatedExpiry = time(access.annotations[accessAnnotationKeys.expiresAt]);
        let expiresAt: number | undefined;
        let expirySource: "annotation" | "estimated" = "annotation";
        if (annotatedVersion === accessNewest.number && annotatedExpiry !== undefined) expiresAt = annotatedExpiry;
        else if (state.pair?.accessVersion === accessNewest.number && state.pair.accessExpiresAt !== undefined) expiresAt = state.pair.accessExpiresAt;
        else {
            expiresAt = (accessNewest.createdAt ?? nowMs) + accessLifetimeMs;
            expirySource = "estimated";
        }
        accessToken = {
            version: accessNewest.number,
            expiresAt: iso(expiresAt),
            secondsLeft: Math.floor((expiresAt - nowMs) / 1000),
            expirySource,
            issuedAt: accessNewest.createdAt === undefined ? null : iso(accessNewest.createdAt),
            ageSeconds: accessNewest.createdAt === undefined ? null : Math.floor((nowMs - accessNewest.createdAt) / 1000),
        };
    }

    const failure = state.failure;
    const failureActive = failure !== undefined && failure.refreshVersion === (refreshNewest?.number ?? 0);
    const reauthorize = { reauthorize: `run \`${authorizeCommand(project)}\`` };
    const failureMessage = (code: string) =>
        code in knownFailures ? permanentFailureMessage(code as PermanentFailureCode, reauthorize) : `The refresher recorded "${code}" and stopped calling Bitrix24.`;

    let status: StatusState;
    let summary: string;
    let fix: string | null = null;
    if (!refreshNewest) {
        status = "not_authorized";
        summary = `no refresh token is stored in ${refresh.id}: the application has not been authorized yet`;
        fix = `Authorize the application: \`${authorizeCommand(project)}\`.`;
    } else if (failure && failureActive) {
        status = "refresh_failed";
        summary = `the refresher stopped on "${failure.code}" with refresh token v${failure.refreshVersion}`;
        fix = failureMessage(failure.code);
    } else if (!accessToken) {
        status = "stale";
        summary = `a refresh token is stored but no access token in ${access.id}: the next refresh stores one`;
        fix = staleFix(project, options);
    } else if (accessToken.secondsLeft <= 0) {
        status = "expired";
        summary = `the access token v${accessToken.version} expired ${humanDuration(accessToken.secondsLeft * 1000)} ago: consumers get expired_token`;
        fix = staleFix(project, options);
    } else if (accessToken.secondsLeft * 1000 < options.staleBelowMs) {
        status = "stale";
        summary = `the access token v${accessToken.version} has only ${humanDuration(accessToken.secondsLeft * 1000)} left: it should have been refreshed by now`;
        fix = staleFix(project, options);
    } else {
        status = "healthy";
        summary = `the access token v${accessToken.version} has ${humanDuration(accessToken.secondsLeft * 1000)} left`;
    }

    const counts = (secret: SecretSnapshot) => ({
        id: secret.id,
        exists: secret.exists,
        enabled: secret.versions.filter((v) => v.state === "ENABLED").length,
        disabled: secret.versions.filter((v) => v.state === "DISABLED").length,
        destroyed: secret.versions.filter((v) => v.state === "DESTROYED").length,
        newest: newestEnabled(secret)?.number ?? null,
    });
    const order: SecretRole[] = ["clientId", "clientSecret", "access", "refresh"];

    return {
        state: status,
        exitCode: exitCodes[status],
        summary,
        fix,
        project,
        emulatorHost: options.emulatorHost ?? null,
        checkedAt: iso(nowMs),
        accessToken,
        refreshToken: refreshNewest
            ? {
                  version: refreshNewest.number,
                  storedAt: refreshNewest.createdAt === undefined ? null : iso(refreshNewest.createdAt),
                  ageSeconds: refreshNewest.createdAt === undefined ? null : Math.floor((nowMs - refreshNewest.createdAt) / 1000),
              }
            : null,
        lastRefreshAt: state.pair?.refreshedAt === undefined ? null : iso(state.pair.refreshedAt),
        lease: state.lease ? { holder: state.lease.holder, expiresAt: iso(state.lease.expiresAt), expired: state.lease.expiresAt <= nowMs } : null,
        lastFailure: failure
            ? {
                  code: failure.code,
                  refreshVersion: failure.refreshVersion,
                  loggedAt: iso(failure.loggedAt),
                  active: failureActive,
                  message: failureMessage(failure.code),
              }
            : null,
        secrets: order.map((role) => counts(snapshot.secrets[role])),
    };
}

/** Failure codes the refresher records (function/core/failure-messages.ts). */
const knownFailures: Record<PermanentFailureCode, true> = {
    invalid_grant: true,
    expired_token: true,
    invalid_client: true,
    payment_required: true,
    not_authorized: true,
    refresh_token_lost: true,
    store_misconfigured: true,
    missing_config: true,
};
