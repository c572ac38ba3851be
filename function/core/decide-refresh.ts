// Whether a refresh is due. Decisions are data: the reason is logged and tested.
import type { RecordedPair } from "./refresh-state";

export type RefreshReason =
    | "no_recorded_expiry" // nothing says when the access token expires: refresh to find out
    | "new_refresh_token" // a refresh token was stored by someone else (a re-authorization)
    | "near_expiry" // less than the margin left
    | "fresh"; // more than the margin left

export interface RefreshDecision {
    due: boolean;
    reason: RefreshReason;
    /** Seconds the current access token has left, when known (may be negative). */
    secondsLeft?: number;
}

/**
 * Deliveries arrive seconds after their tick, and not always equally late. With the default
 * schedule the margin (20 min) is exactly two ticks, so without this allowance a tick whose
 * delivery came a little later than the one that refreshed would find 19:5x left and refresh
 * early — about half the time, pushing the rate over 30 a day. A minute late counts as on time.
 */
export const deliveryJitterSeconds = 60;

export function decideRefresh(input: {
    pair: RecordedPair | undefined;
    newestRefreshVersion: number;
    nowMs: number;
    marginSeconds: number;
}): RefreshDecision {
    const { pair, newestRefreshVersion, nowMs, marginSeconds } = input;
    if (!pair || pair.accessExpiresAt === undefined) return { due: true, reason: "no_recorded_expiry" };
    if (pair.refreshVersion !== newestRefreshVersion) return { due: true, reason: "new_refresh_token" };
    const secondsLeft = Math.floor((pair.accessExpiresAt - nowMs) / 1000);
    if (secondsLeft < marginSeconds - deliveryJitterSeconds) return { due: true, reason: "near_expiry", secondsLeft };
    return { due: false, reason: "fresh", secondsLeft };
}
