// The refresh algorithm: one invocation of the runtime contract in DESIGN.md. Pure: everything it
// touches comes in through its ports, so tests drive every branch with fakes.
import { decideRefresh, type RefreshReason } from "./decide-refresh";
import { permanentFailureMessage, type FixHints, type PermanentFailureCode } from "./failure-messages";
import type { Clock, Log, OAuthClient, OAuthFailure, TokenKind, TokenStore } from "./ports";
import { StoreError } from "./ports";
import { acquireLease, releaseLease } from "./lease";
import { withRefreshState, type RefreshState } from "./refresh-state";

export interface RefreshPorts {
    store: TokenStore;
    oauth: OAuthClient;
    clock: Clock;
    log: Log;
}

export interface RefreshSettings {
    /** Refresh when the access token has less than this many seconds left. */
    marginSeconds: number;
    /** Enabled versions kept per token secret; older ones are destroyed. At least 1. */
    keepVersions: number;
    /** How long a lease holds before another invocation may take it over (longer than the function timeout). */
    leaseSeconds: number;
    /** Unique per invocation. */
    holder: string;
    /** Repeat the CRITICAL line of a recorded permanent failure at most this often. */
    criticalRepeatSeconds: number;
    hints: FixHints;
}

export type RefreshOutcome =
    | { kind: "refreshed"; reason: RefreshReason; refreshVersion: number; accessVersion: number; expiresAt: number }
    | { kind: "fresh"; secondsLeft: number | undefined }
    | { kind: "lease_busy" }
    | { kind: "needs_attention"; code: PermanentFailureCode };

/** A failure worth retrying: the handler throws it so the event is redelivered. Its message holds no secret. */
export class TransientRefreshError extends Error {
    constructor(
        readonly code: string,
        message: string,
    ) {
        super(message);
        this.name = "TransientRefreshError";
    }
}

/**
 * Another invocation holds the lease while a refresh is due. Thrown (so Eventarc redelivers) rather
 * than answered 2xx: if the holder crashed, the redelivery after its lease expires does the refresh,
 * instead of the token waiting for the next tick. Logged at INFO: it is no failure.
 */
export class LeaseBusyError extends TransientRefreshError {
    constructor() {
        super("lease_busy", "another invocation holds the refresh lease while a refresh is due; redeliver later");
        this.name = "LeaseBusyError";
    }
}

const permanentOAuthCodes: Record<string, PermanentFailureCode> = {
    invalid_grant: "invalid_grant",
    expired_token: "expired_token",
    invalid_client: "invalid_client",
    payment_required: "payment_required",
};

interface UnderLease {
    next: RefreshState;
    outcome?: RefreshOutcome;
    error?: TransientRefreshError;
}

export async function refreshTokens(ports: RefreshPorts, settings: RefreshSettings): Promise<RefreshOutcome> {
    if (!Number.isInteger(settings.keepVersions) || settings.keepVersions < 1) {
        throw new RangeError("keepVersions must be an integer of at least 1");
    }
    try {
        return await refreshUnderLease(ports, settings);
    } catch (error) {
        if (error instanceof LeaseBusyError) throw error;
        if (error instanceof StoreError && (error.code === "not_found" || error.code === "permission_denied")) {
            ports.log.write({
                severity: "CRITICAL",
                event: "refresh.failed",
                message: permanentFailureMessage("store_misconfigured", settings.hints),
                failure: "store_misconfigured",
                operation: error.operation,
                detail: error.message,
            });
            return { kind: "needs_attention", code: "store_misconfigured" };
        }
        const transient =
            error instanceof TransientRefreshError
                ? error
                : error instanceof StoreError
                  ? new TransientRefreshError(`store_${error.code}`, `Secret Manager ${error.operation} failed: ${error.message}`)
                  : undefined;
        if (!transient) throw error;
        ports.log.write({
            severity: "ERROR",
            event: "refresh.failed",
            message: `Token refresh failed and will be retried: ${transient.message}`,
            failure: transient.code,
        });
        throw transient;
    }
}

async function refreshUnderLease(ports: RefreshPorts, settings: RefreshSettings): Promise<RefreshOutcome> {
    const acquiredAt = ports.clock.now();
    const lease = await acquireLease(ports.store, settings.holder, settings.leaseSeconds, acquiredAt);
    if (!lease.acquired) return leaseBusy(ports, settings, lease.state, acquiredAt);
    const { state, etag } = lease;

    let result: UnderLease;
    try {
        result = await whileHoldingLease(ports, settings, state);
    } catch (error) {
        await release(ports, settings, etag, lease.annotations, state);
        throw error;
    }
    await release(ports, settings, etag, withRefreshState(lease.annotations, result.next), result.next);
    if (result.error) throw result.error;
    return result.outcome!;
}

/** Leaves the refresh to the lease holder: answered 2xx when nothing is due, redelivered when a refresh is. */
function leaseBusy(ports: RefreshPorts, settings: RefreshSettings, state: RefreshState, nowMs: number): RefreshOutcome {
    const why = "Another invocation holds the refresh lease";
    const awaitingHuman = state.failure !== undefined && state.failure.refreshVersion === (state.pair?.refreshVersion ?? 0);
    const due =
        !awaitingHuman &&
        decideRefresh({ pair: state.pair, newestRefreshVersion: state.pair?.refreshVersion ?? 0, nowMs, marginSeconds: settings.marginSeconds }).due;
    ports.log.write({
        severity: "INFO",
        event: "refresh.skipped",
        message: due ? `${why} while a refresh is due; asking for redelivery in case it fails` : `${why}; leaving the refresh to it`,
        reason: "lease_busy",
        redeliver: due,
        leaseExpiresAt: state.lease ? new Date(state.lease.expiresAt).toISOString() : undefined,
    });
    if (due) throw new LeaseBusyError();
    return { kind: "lease_busy" };
}

/** Drops the lease and records `next`. Losing the lease by now is survivable: the next tick re-decides. */
async function release(ports: RefreshPorts, settings: RefreshSettings, etag: string, annotations: Record<string, string>, next: RefreshState) {
    try {
        if (await releaseLease(ports.store, settings.holder, etag, annotations, next)) return;
        ports.log.write({
            severity: "WARNING",
            event: "refresh.warning",
            message: "The refresh lease expired and was taken over before it was released; the next tick re-checks the tokens",
        });
    } catch (error) {
        ports.log.write({
            severity: "WARNING",
            event: "refresh.warning",
            message: `Could not release the refresh lease; it expires by itself: ${safeMessage(error)}`,
        });
    }
}

async function whileHoldingLease(ports: RefreshPorts, settings: RefreshSettings, state: RefreshState): Promise<UnderLease> {
    const { store, oauth, clock, log } = ports;
    const startedAt = clock.now();
    const newest = await newestRefreshVersion(store, state);

    if (newest === undefined || (state.failure && state.failure.refreshVersion === newest)) {
        const code = (newest === undefined ? "not_authorized" : state.failure!.code) as PermanentFailureCode;
        const previous = state.failure && state.failure.code === code ? state.failure : undefined;
        const repeatDue = !previous || startedAt - previous.loggedAt >= settings.criticalRepeatSeconds * 1000;
        if (repeatDue) reportPermanent(ports, settings, code, { repeated: previous !== undefined });
        else {
            log.write({
                severity: "INFO",
                event: "refresh.skipped",
                message: "Waiting for re-authorization; no call to Bitrix24 until a new refresh token is stored",
                reason: "awaiting_reauthorization",
                failure: code,
            });
        }
        return {
            next: { ...state, failure: { code, refreshVersion: newest ?? 0, loggedAt: repeatDue ? startedAt : previous!.loggedAt } },
            outcome: { kind: "needs_attention", code },
        };
    }

    const decision = decideRefresh({
        pair: state.pair,
        newestRefreshVersion: newest,
        nowMs: startedAt,
        marginSeconds: settings.marginSeconds,
    });
    if (!decision.due) {
        log.write({
            severity: "INFO",
            event: "refresh.skipped",
            message: `Access token still fresh (${decision.secondsLeft} s left); no refresh needed`,
            reason: decision.reason,
            secondsLeft: decision.secondsLeft,
            refreshVersion: newest,
        });
        return { next: { ...state, failure: undefined }, outcome: { kind: "fresh", secondsLeft: decision.secondsLeft } };
    }

    let used = newest;
    let refreshToken = await store.readVersion("refresh", used);
    let answer = await oauth.refresh(refreshToken);
    if (!answer.ok && (answer.failure.code === "invalid_grant" || answer.failure.code === "expired_token")) {
        // Someone (a re-authorization, a racing writer) may have stored a newer token meanwhile: use it once.
        const latest = (await store.listEnabledVersions("refresh"))[0]?.version;
        if (latest !== undefined && latest > used) {
            log.write({
                severity: "INFO",
                message: `Refresh token version ${used} was rejected; a newer version ${latest} exists, trying it once`,
                rejectedVersion: used,
                refreshVersion: latest,
            });
            used = latest;
            refreshToken = await store.readVersion("refresh", used);
            answer = await oauth.refresh(refreshToken);
        }
    }

    if (!answer.ok) {
        const permanent = answer.failure.permanent ? permanentOAuthCodes[answer.failure.code] : undefined;
        if (permanent) {
            reportPermanent(ports, settings, permanent, { status: answer.failure.status, refreshVersion: used });
            return {
                next: { ...state, failure: { code: permanent, refreshVersion: used, loggedAt: startedAt } },
                outcome: { kind: "needs_attention", code: permanent },
            };
        }
        return { next: state, error: oauthTransientError(answer.failure) };
    }

    const tokens = answer.tokens;
    let refreshVersion = used;
    let refreshLost = false;
    const rotated = tokens.refreshToken !== undefined && tokens.refreshToken !== refreshToken;
    if (rotated) {
        // The old refresh token is dead from here on: the new one must be stored before anything else.
        try {
            refreshVersion = await store.addVersion("refresh", tokens.refreshToken!);
        } catch (error) {
            if (!(error instanceof StoreError)) throw error;
            refreshLost = true;
        }
    }
    let accessVersion: number | undefined;
    let accessError: unknown;
    try {
        accessVersion = await store.addVersion("access", tokens.accessToken);
    } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        accessError = error;
    }

    if (refreshLost) {
        if (accessVersion !== undefined) await pruneVersions(ports, "access", settings.keepVersions, accessVersion);
        reportPermanent(ports, settings, "refresh_token_lost", {
            refreshVersion: used,
            accessVersion,
            accessExpiresAt: accessVersion ? new Date(tokens.expiresAt * 1000).toISOString() : undefined,
        });
        return {
            next: {
                ...state,
                failure: { code: "refresh_token_lost", refreshVersion: used, loggedAt: startedAt },
            },
            outcome: { kind: "needs_attention", code: "refresh_token_lost" },
        };
    }
    if (accessVersion === undefined) {
        // The chain is safe (the new refresh token is stored); with no recorded expiry the next tick refreshes again.
        return {
            next: { pair: { refreshVersion }, failure: undefined },
            error: new TransientRefreshError(
                "access_token_not_stored",
                `the new refresh token was stored as version ${refreshVersion}, but the access token was not: ${safeMessage(accessError)}`,
            ),
        };
    }

    const expiresAtMs = tokens.expiresAt * 1000;
    try {
        await ports.store.describeAccessToken(accessVersion, expiresAtMs);
    } catch (error) {
        log.write({
            severity: "WARNING",
            event: "refresh.warning",
            message: `Could not annotate the access-token secret with the new expiry; consumers fall back to reading the newest version: ${safeMessage(error)}`,
        });
    }
    await pruneVersions(ports, "refresh", settings.keepVersions, refreshVersion);
    await pruneVersions(ports, "access", settings.keepVersions, accessVersion);

    log.write({
        severity: "NOTICE",
        event: "refresh.succeeded",
        message: `Refreshed Bitrix24 tokens: refresh token v${refreshVersion}, access token v${accessVersion}, expires ${new Date(expiresAtMs).toISOString()}`,
        reason: decision.reason,
        refreshVersion,
        accessVersion,
        refreshTokenRotated: rotated,
        expiresAt: new Date(expiresAtMs).toISOString(),
        durationMs: clock.now() - startedAt,
    });
    return {
        next: {
            pair: { refreshVersion, accessVersion, accessExpiresAt: expiresAtMs, refreshedAt: clock.now() },
            failure: undefined,
        },
        outcome: { kind: "refreshed", reason: decision.reason, refreshVersion, accessVersion, expiresAt: tokens.expiresAt },
    };
}

/** The newest enabled refresh-token version. The recorded one wins if a lagging list does not show it yet. */
async function newestRefreshVersion(store: TokenStore, state: RefreshState): Promise<number | undefined> {
    const listed = (await store.listEnabledVersions("refresh"))[0]?.version;
    const recorded = state.pair?.refreshVersion;
    if (listed === undefined) return recorded;
    return recorded !== undefined && recorded > listed ? recorded : listed;
}

/** Keeps the newest `keep` enabled versions, never `justWritten`; destroys the rest. Failure is only a warning. */
async function pruneVersions(ports: RefreshPorts, kind: TokenKind, keep: number, justWritten: number): Promise<void> {
    try {
        const enabled = await ports.store.listEnabledVersions(kind);
        const survivors = new Set([justWritten, ...enabled.slice(0, keep).map((v) => v.version)]);
        const doomed = enabled.filter((v) => !survivors.has(v.version) && v.version < justWritten);
        for (const v of doomed) await ports.store.destroyVersion(kind, v.version);
    } catch (error) {
        ports.log.write({
            severity: "WARNING",
            event: "refresh.warning",
            message: `Could not prune old ${kind}-token versions; the next refresh tries again: ${safeMessage(error)}`,
        });
    }
}

function reportPermanent(
    ports: RefreshPorts,
    settings: RefreshSettings,
    code: PermanentFailureCode,
    fields: Record<string, unknown>,
): void {
    ports.log.write({
        severity: "CRITICAL",
        event: "refresh.reauthorization_needed",
        message: permanentFailureMessage(code, settings.hints),
        failure: code,
        ...fields,
    });
}

function oauthTransientError(failure: OAuthFailure): TransientRefreshError {
    const status = failure.status !== undefined ? ` (HTTP ${failure.status})` : "";
    const detail = failure.detail ? `: ${failure.detail}` : "";
    const consumed = failure.sent ? "; the request reached Bitrix24" : "; the request was not sent";
    return new TransientRefreshError(`oauth_${failure.code}`, `Bitrix24 token endpoint ${failure.code}${status}${detail}${consumed}`);
}

function safeMessage(error: unknown): string {
    if (error instanceof StoreError) return `${error.operation}: ${error.message}`;
    if (error instanceof Error) return error.name;
    return "unknown error";
}
