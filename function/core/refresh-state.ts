// What the refresher remembers between invocations, kept as annotations on the refresh-token
// secret. Writing them is etag-guarded, so the lease and the state change together or not at all.

/** Annotation keys. They are part of the contract with `npm run status` and `npm run authorize`. */
export const annotationKeys = {
    leaseHolder: "b24-lease-holder",
    leaseExpiresAt: "b24-lease-expires-at",
    refreshVersion: "b24-refresh-version",
    accessVersion: "b24-access-version",
    accessExpiresAt: "b24-access-expires-at",
    refreshedAt: "b24-refreshed-at",
    failure: "b24-failure",
    failureRefreshVersion: "b24-failure-refresh-version",
    failureLoggedAt: "b24-failure-logged-at",
} as const;

/** Annotations on the access-token secret: what consumers read to cache the token until it expires. */
export const accessAnnotationKeys = {
    version: "b24-access-version",
    expiresAt: "b24-access-expires-at",
} as const;

export interface Lease {
    holder: string;
    expiresAt: number; // ms
}

/** The pair written by the last successful refresh (or authorization). */
export interface RecordedPair {
    refreshVersion: number;
    accessVersion?: number;
    /** ms; absent when the access token was not stored. */
    accessExpiresAt?: number;
    refreshedAt?: number;
}

/** A permanent failure tied to the refresh-token version it happened with. */
export interface RecordedFailure {
    code: string;
    /** 0 when no refresh token was stored at all. */
    refreshVersion: number;
    loggedAt: number; // ms
}

export interface RefreshState {
    lease?: Lease;
    pair?: RecordedPair;
    failure?: RecordedFailure;
}

function positiveInt(value: string | undefined): number | undefined {
    if (value === undefined || !/^\d+$/.test(value)) return undefined;
    const n = Number(value);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function nonNegativeInt(value: string | undefined): number | undefined {
    return value === "0" ? 0 : positiveInt(value);
}

function time(value: string | undefined): number | undefined {
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
}

function iso(ms: number): string {
    return new Date(ms).toISOString();
}

/** Reads the state; anything malformed is treated as absent (a refresh is then due, which is safe). */
export function parseRefreshState(annotations: Record<string, string>): RefreshState {
    const k = annotationKeys;
    const state: RefreshState = {};
    const holder = annotations[k.leaseHolder];
    const leaseExpiresAt = time(annotations[k.leaseExpiresAt]);
    if (holder && leaseExpiresAt !== undefined) state.lease = { holder, expiresAt: leaseExpiresAt };
    const refreshVersion = positiveInt(annotations[k.refreshVersion]);
    if (refreshVersion !== undefined) {
        state.pair = {
            refreshVersion,
            accessVersion: positiveInt(annotations[k.accessVersion]),
            accessExpiresAt: time(annotations[k.accessExpiresAt]),
            refreshedAt: time(annotations[k.refreshedAt]),
        };
    }
    const failure = annotations[k.failure];
    const failureRefreshVersion = nonNegativeInt(annotations[k.failureRefreshVersion]);
    if (failure && failureRefreshVersion !== undefined) {
        state.failure = {
            code: failure,
            refreshVersion: failureRefreshVersion,
            loggedAt: time(annotations[k.failureLoggedAt]) ?? 0,
        };
    }
    return state;
}

/** Returns a copy of `annotations` with the state replaced; foreign annotations are kept. */
export function withRefreshState(annotations: Record<string, string>, state: RefreshState): Record<string, string> {
    const k = annotationKeys;
    const next: Record<string, string> = {};
    const ours = new Set<string>(Object.values(k));
    for (const [key, value] of Object.entries(annotations)) if (!ours.has(key)) next[key] = value;
    if (state.lease) {
        next[k.leaseHolder] = state.lease.holder;
        next[k.leaseExpiresAt] = iso(state.lease.expiresAt);
    }
    if (state.pair) {
        next[k.refreshVersion] = String(state.pair.refreshVersion);
        if (state.pair.accessVersion !== undefined) next[k.accessVersion] = String(state.pair.accessVersion);
        if (state.pair.accessExpiresAt !== undefined) next[k.accessExpiresAt] = iso(state.pair.accessExpiresAt);
        if (state.pair.refreshedAt !== undefined) next[k.refreshedAt] = iso(state.pair.refreshedAt);
    }
    if (state.failure) {
        next[k.failure] = state.failure.code;
        next[k.failureRefreshVersion] = String(state.failure.refreshVersion);
        next[k.failureLoggedAt] = iso(state.failure.loggedAt);
    }
    return next;
}
