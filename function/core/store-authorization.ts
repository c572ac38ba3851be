// Stores a freshly authorized token pair the way the refresher stores a refreshed one, so the
// refresher carries on from it: under the refresher's lease, refresh token first, then the access
// token, then the pair recorded on the refresh-token secret (which also clears a recorded permanent
// failure). Pure: everything goes through the TokenStore port.
import { authorizationAnnotationKeys, type AuthorizationVia } from "./authorization";
import type { Clock, IssuedTokens, TokenStore } from "./ports";
import { acquireLease, releaseLease } from "./lease";
import { StoreError } from "./ports";
import { parseRefreshState, withRefreshState } from "./refresh-state";

export interface StoreAuthorizationPorts {
    store: TokenStore;
    clock: Clock;
    /** Waits between lease polls; tests pass one that advances a fake clock. */
    sleep?: (ms: number) => Promise<void>;
}

export interface StoreAuthorizationInput {
    /** Must carry a refresh token (checked by `checkIssuedTokens`). */
    tokens: IssuedTokens;
    via: AuthorizationVia;
    /** The SHA-256 of an install event's application_token, to record. */
    applicationTokenSha256?: string;
    /** Unique per attempt: marks the lease as ours. */
    holder: string;
    /** How long our lease holds if we crash while writing. */
    leaseSeconds: number;
    /** How long to wait for a refresher that holds the lease. After that we write without it (see below). */
    leaseWaitMs: number;
}

export interface StoredAuthorization {
    refreshVersion: number;
    /** Absent when the access token could not be stored: the refresher then issues one at its next tick. */
    accessVersion?: number;
    /** ms */
    expiresAtMs: number;
    /** Whether the writes happened under our lease. */
    leaseHeld: boolean;
    /** Whether the pair was recorded on the refresh-token secret. */
    recorded: boolean;
    /** Things that went wrong without losing the pair; safe to print (no values). */
    warnings: string[];
}

const pollMs = 500;
const recordAttempts = 5;

/**
 * Writes the pair. Throws StoreError only when the refresh token itself could not be stored (then nothing
 * usable was written and our lease is released). Everything after that first write is best effort and
 * reported in `warnings`, because the refresher recovers from each gap by itself:
 * - no access token stored, or the pair not recorded: the refresher sees a refresh-token version newer
 *   than its record (or no expiry) and refreshes from the new token at its next tick;
 * - the lease not taken (a refresher held it longer than `leaseWaitMs`): versions are append-only and the
 *   record is etag-guarded, so nothing is overwritten; the refresher's own record of its (older, still live)
 *   chain may win, in which case its next tick refreshes from the newest version, which is ours or its.
 */
export async function storeAuthorizedTokens(ports: StoreAuthorizationPorts, input: StoreAuthorizationInput): Promise<StoredAuthorization> {
    const { store, clock } = ports;
    const sleep = ports.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const refreshToken = input.tokens.refreshToken;
    if (!refreshToken) throw new RangeError("storeAuthorizedTokens needs a refresh token");
    const warnings: string[] = [];
    const expiresAtMs = input.tokens.expiresAt * 1000;

    // 1. The refresher's lease: while we hold it, a tick that fires meanwhile leaves the secrets alone.
    let leaseEtag: string | null = null;
    let leaseAnnotations: Record<string, string> = {};
    const waitUntil = clock.now() + input.leaseWaitMs;
    for (;;) {
        const lease = await acquireLease(store, input.holder, input.leaseSeconds, clock.now());
        if (lease.acquired) {
            leaseEtag = lease.etag;
            leaseAnnotations = lease.annotations;
            break;
        }
        if (clock.now() >= waitUntil) {
            warnings.push(
                `the refresher held its lease for more than ${Math.round(input.leaseWaitMs / 1000)} s; the tokens were written without it`,
            );
            break;
        }
        await sleep(pollMs);
    }

    // 2. The refresh token first: it is the one that cannot be recovered.
    let refreshVersion: number;
    try {
        refreshVersion = await store.addVersion("refresh", refreshToken);
    } catch (error) {
        if (leaseEtag !== null) await releaseQuietly(store, input.holder, leaseEtag, leaseAnnotations);
        throw error;
    }

    // 3. Then the access token, and its expiry for consumers.
    let accessVersion: number | undefined;
    try {
        accessVersion = await store.addVersion("access", input.tokens.accessToken);
    } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        warnings.push(`the access token was not stored (${error.operation}: ${error.message}); the refresher issues a new one at its next tick`);
    }
    if (accessVersion !== undefined) {
        try {
            await store.describeAccessToken(accessVersion, expiresAtMs);
        } catch (error) {
            if (!(error instanceof StoreError)) throw error;
            warnings.push(`the access-token secret's expiry annotations were not updated (${error.operation}: ${error.message})`);
        }
    }

    // 4. Record the pair, clear any recorded failure, drop our lease (keep anyone else's), in one etag-guarded write.
    const recordedAt = clock.now();
    const extra: Record<string, string> = {
        [authorizationAnnotationKeys.authorizedAt]: new Date(recordedAt).toISOString(),
        [authorizationAnnotationKeys.authorizedVia]: input.via,
    };
    if (input.tokens.memberId) extra[authorizationAnnotationKeys.memberId] = input.tokens.memberId;
    if (input.applicationTokenSha256) extra[authorizationAnnotationKeys.applicationTokenSha256] = input.applicationTokenSha256;
    let recorded = false;
    for (let attempt = 0; attempt < recordAttempts && !recorded; attempt++) {
        try {
            const meta = await store.readMeta();
            const state = parseRefreshState(meta.annotations);
            const next = withRefreshState(meta.annotations, {
                lease: state.lease && state.lease.holder !== input.holder ? state.lease : undefined,
                pair: {
                    refreshVersion,
                    accessVersion,
                    accessExpiresAt: accessVersion !== undefined ? expiresAtMs : undefined,
                    refreshedAt: recordedAt,
                },
                failure: undefined,
            });
            recorded = (await store.writeMeta(meta.etag, { ...next, ...extra })) !== null;
        } catch (error) {
            if (!(error instanceof StoreError)) throw error;
            warnings.push(`recording the pair failed (${error.operation}: ${error.message})`);
            break;
        }
    }
    if (!recorded) {
        warnings.push("the pair was not recorded on the refresh-token secret; the refresher refreshes from the new token at its next tick");
        if (leaseEtag !== null) await releaseQuietly(store, input.holder, leaseEtag, leaseAnnotations);
    }

    return { refreshVersion, accessVersion, expiresAtMs, leaseHeld: leaseEtag !== null, recorded, warnings };
}

async function releaseQuietly(store: TokenStore, holder: string, etag: string, annotations: Record<string, string>): Promise<void> {
    try {
        await releaseLease(store, holder, etag, annotations, parseRefreshState(annotations));
    } catch {
        // The lease expires by itself.
    }
}
