// Port wrappers the soak puts around the real adapters: a simulated process crash, and the
// deliberate bugs of `--break`, which prove that the soak's invariants can fail.
import type { Log, OAuthClient, TokenStore } from "../../function/core/ports";
import { annotationKeys } from "../../function/core/refresh-state";

/**
 * One invocation's process. After `crash()` it is frozen, as a killed process is: every port call
 * from then on never settles, and nothing more is logged. Nothing is released or cleaned up.
 */
export class SimulatedProcess {
    crashed = false;
    private signal!: () => void;
    /** Settles when the process crashes. */
    readonly died = new Promise<void>((resolve) => (this.signal = resolve));

    crash(): Promise<never> {
        this.crashed = true;
        this.signal();
        return new Promise<never>(() => {});
    }

    /** Runs `call` unless the process is dead; then `after` may crash it. */
    async guard<T>(call: () => Promise<T>, after?: (value: T) => boolean): Promise<T> {
        if (this.crashed) return new Promise<never>(() => {});
        const value = await call();
        if (this.crashed) return new Promise<never>(() => {});
        if (after?.(value)) return this.crash();
        return value;
    }
}

export type CrashPoint = "holding_lease" | "between_writes" | "after_answer";

/** Freezes the process at `crashAt` (once), and every call after it. `onFire` tells the harness it happened. */
export function crashingPorts(
    proc: SimulatedProcess,
    store: TokenStore,
    oauth: OAuthClient,
    log: Log,
    crashAt: CrashPoint | undefined,
    onFire: () => void,
): { store: TokenStore; oauth: OAuthClient; log: Log } {
    let armed = crashAt !== undefined;
    const fire = (point: CrashPoint) => (ok: boolean) => {
        if (!armed || crashAt !== point || !ok) return false;
        armed = false;
        onFire();
        return true;
    };
    return {
        store: {
            readMeta: () => proc.guard(() => store.readMeta()),
            writeMeta: (etag, annotations) =>
                proc.guard(
                    () => store.writeMeta(etag, annotations),
                    (result) => fire("holding_lease")(result !== null && annotations[annotationKeys.leaseHolder] !== undefined),
                ),
            listEnabledVersions: (kind) => proc.guard(() => store.listEnabledVersions(kind)),
            readVersion: (kind, version) => proc.guard(() => store.readVersion(kind, version)),
            addVersion: (kind, value) => proc.guard(() => store.addVersion(kind, value), () => fire("between_writes")(true)),
            destroyVersion: (kind, version) => proc.guard(() => store.destroyVersion(kind, version)),
            describeAccessToken: (version, expiresAtMs) => proc.guard(() => store.describeAccessToken(version, expiresAtMs)),
        },
        oauth: {
            refresh: (refreshToken) => proc.guard(() => oauth.refresh(refreshToken), (result) => fire("after_answer")(result.ok)),
        },
        log: {
            write(entry) {
                if (!proc.crashed) log.write(entry);
            },
        },
    };
}

export const breakModes = ["access-first", "no-lease", "no-prune", "log-token"] as const;
export type BreakMode = (typeof breakModes)[number];

export const breakModeHelp: Record<BreakMode, string> = {
    "access-first": "write the access token before the refresh token (a crash between the writes then loses the chain)",
    "no-lease": "ignore the lease: every concurrent delivery refreshes",
    "no-prune": "never destroy old versions",
    "log-token": "print the refresh token in a debug line, bypassing the Redactor",
};

export interface BreakContext {
    /** The number the next version of the refresh-token secret will get. */
    nextRefreshVersion(): number;
    /** A raw output line, as a stray console.log would write it. */
    rawLine(line: string): void;
}

/** Wraps the ports so the refresher misbehaves in the way `mode` names. */
export function brokenPorts(mode: BreakMode, store: TokenStore, oauth: OAuthClient, context: BreakContext): { store: TokenStore; oauth: OAuthClient } {
    switch (mode) {
        case "access-first": {
            let pendingRefresh: string | undefined;
            return {
                oauth,
                store: {
                    ...store,
                    async addVersion(kind, value) {
                        if (kind === "refresh") {
                            pendingRefresh = value;
                            return context.nextRefreshVersion();
                        }
                        const accessVersion = await store.addVersion("access", value);
                        if (pendingRefresh !== undefined) {
                            const refresh = pendingRefresh;
                            pendingRefresh = undefined;
                            await store.addVersion("refresh", refresh);
                        }
                        return accessVersion;
                    },
                },
            };
        }
        case "no-lease": {
            const leaseKeys = [annotationKeys.leaseHolder, annotationKeys.leaseExpiresAt] as string[];
            return {
                oauth,
                store: {
                    ...store,
                    async readMeta() {
                        const meta = await store.readMeta();
                        for (const key of leaseKeys) delete meta.annotations[key];
                        return meta;
                    },
                    async writeMeta(_etag, annotations) {
                        // Last writer wins: retry with the current etag until the write lands.
                        for (;;) {
                            const current = await store.readMeta();
                            const etag = await store.writeMeta(current.etag, annotations);
                            if (etag !== null) return etag;
                        }
                    },
                },
            };
        }
        case "no-prune":
            return { oauth, store: { ...store, destroyVersion: async () => {} } };
        case "log-token":
            return {
                store,
                oauth: {
                    refresh(refreshToken) {
                        context.rawLine(JSON.stringify({ severity: "DEBUG", message: `refreshing with ${refreshToken}` }));
                        return oauth.refresh(refreshToken);
                    },
                },
            };
    }
}
