// Keeps one process under the portal's request rate. Bitrix24 counts requests in a leaky bucket
// that drains 2 per second (5 on Enterprise) and answers 503 QUERY_LIMIT_EXCEEDED once 50 (250)
// are pending; every app and process calling the portal shares that bucket. Pacing each process
// at the drain rate means it never fills the bucket on its own.
//
// The pacer is a generic cell rate algorithm (GCRA, the leaky bucket as a meter) run as a queue:
// waiting calls are released one at a time in call order, each at least `intervalMs` after the
// previous release *actually happened* (a late timer delays the rest instead of bunching them), with
// `burst - 1` releases of tolerance after an idle spell. The interval carries a 10 % margin so
// that network and scheduling jitter never make the portal see more than `requestsPerSecond`
// requests in any one second.

export interface PacerOptions {
    /** Sustained rate. Bitrix24: 2 (5 on Enterprise plans). */
    requestsPerSecond: number;
    /** Requests allowed back to back after an idle spell. Default 1: strictly paced. */
    burst?: number;
    /** Clock in ms; default `Date.now`. */
    now?: () => number;
}

/** Extra spacing on top of 1/rate, so the portal never measures more than the rate. */
export const pacingMargin = 0.1;

export class Pacer {
    readonly intervalMs: number;
    private readonly toleranceMs: number;
    private readonly now: () => number;
    /** Theoretical time of the next release (GCRA's TAT), ms. */
    private nextAt = 0;
    /** No release before this time (set after the portal said "too many"), ms. */
    private heldUntil = 0;
    private readonly waiting: Array<() => void> = [];
    private timer: NodeJS.Timeout | undefined;

    constructor(options: PacerOptions) {
        const { requestsPerSecond } = options;
        const burst = options.burst ?? 1;
        if (!(Number.isFinite(requestsPerSecond) && requestsPerSecond > 0)) {
            throw new RangeError(`requestsPerSecond must be a positive number, got ${requestsPerSecond}`);
        }
        if (!(Number.isInteger(burst) && burst >= 1)) throw new RangeError(`burst must be a whole number of at least 1, got ${burst}`);
        this.intervalMs = (1000 / requestsPerSecond) * (1 + pacingMargin);
        this.toleranceMs = (burst - 1) * this.intervalMs;
        this.now = options.now ?? Date.now;
    }

    /** Resolves when this call may send its request. */
    acquire(): Promise<void> {
        return new Promise<void>((resolve) => {
            this.waiting.push(resolve);
            this.pump();
        });
    }

    /** Releases nothing for `ms` from now: the portal is throttling, so every queued call waits. */
    holdFor(ms: number): void {
        this.heldUntil = Math.max(this.heldUntil, this.now() + ms);
    }

    /** Calls waiting for a slot. */
    get queued(): number {
        return this.waiting.length;
    }

    private pump(): void {
        while (this.timer === undefined && this.waiting.length > 0) {
            const now = this.now();
            const at = Math.max(this.nextAt - this.toleranceMs, this.heldUntil);
            if (at > now) {
                this.timer = setTimeout(() => {
                    this.timer = undefined;
                    this.pump();
                }, at - now);
                return;
            }
            this.nextAt = Math.max(this.nextAt, now) + this.intervalMs;
            this.waiting.shift()!();
        }
    }
}

const shared = new Map<string, Pacer>();

/**
 * One pacer per portal endpoint and rate in this process, so that clients created in several
 * places (or per request) still share one budget.
 */
export function sharedPacer(endpoint: string, options: PacerOptions): Pacer {
    const key = `${endpoint}|${options.requestsPerSecond}|${options.burst ?? 1}`;
    let pacer = shared.get(key);
    if (!pacer) {
        pacer = new Pacer(options);
        shared.set(key, pacer);
    }
    return pacer;
}
