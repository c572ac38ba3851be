// The refresh lease: an etag-guarded annotation on the refresh-token secret. Whoever holds it may
// write token versions; the refresher and a first authorization both take it.
import type { TokenStore } from "./ports";
import { parseRefreshState, withRefreshState, type RefreshState } from "./refresh-state";

export type LeaseAttempt =
    /** `state` is what was recorded before we took the lease; `etag`/`annotations` are the secret's now. */
    | { acquired: true; etag: string; annotations: Record<string, string>; state: RefreshState }
    /** Someone else holds a live lease; `state` is what they recorded. */
    | { acquired: false; state: RefreshState };

export async function acquireLease(store: TokenStore, holder: string, leaseSeconds: number, nowMs: number): Promise<LeaseAttempt> {
    const meta = await store.readMeta();
    const state = parseRefreshState(meta.annotations);
    if (state.lease && state.lease.expiresAt > nowMs && state.lease.holder !== holder) return { acquired: false, state };
    const annotations = withRefreshState(meta.annotations, { ...state, lease: { holder, expiresAt: nowMs + leaseSeconds * 1000 } });
    const etag = await store.writeMeta(meta.etag, annotations);
    if (etag !== null) return { acquired: true, etag, annotations, state };
    // A stale etag: someone else wrote first — or our own write landed and only its answer was lost
    // (the client's retry then carries the old etag). Only a re-read tells them apart.
    const again = await store.readMeta();
    const current = parseRefreshState(again.annotations);
    if (current.lease?.holder !== holder) return { acquired: false, state: current };
    return { acquired: true, etag: again.etag, annotations: again.annotations, state };
}

/**
 * Drops our lease and records `next`. Returns false only when someone else took the lease over
 * meanwhile (ours expired); a release that landed but whose answer was lost counts as released.
 */
export async function releaseLease(
    store: TokenStore,
    holder: string,
    etag: string,
    annotations: Record<string, string>,
    next: RefreshState,
): Promise<boolean> {
    const released = withRefreshState(annotations, { ...next, lease: undefined });
    if ((await store.writeMeta(etag, released)) !== null) return true;
    const again = await store.readMeta();
    const current = parseRefreshState(again.annotations).lease?.holder;
    if (current === holder && (await store.writeMeta(again.etag, released)) !== null) return true;
    return current === undefined;
}
