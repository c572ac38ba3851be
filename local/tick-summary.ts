// Turns the refresher's JSON log lines for one delivery into the one readable line `npm start`
// prints per tick: refreshed / still fresh / failed and why, versions, expiry.

export interface TickResult {
    status: number;
    lines: string[];
}

function entries(lines: string[]): Array<Record<string, unknown>> {
    return lines.flatMap((line) => {
        try {
            const parsed = JSON.parse(line) as unknown;
            return parsed && typeof parsed === "object" ? [parsed as Record<string, unknown>] : [];
        } catch {
            return [];
        }
    });
}

function clock(iso: unknown): string {
    const date = new Date(String(iso));
    return Number.isNaN(date.getTime()) ? "?" : date.toTimeString().slice(0, 8);
}

export function summarizeTick(result: TickResult): string {
    const logged = entries(result.lines);
    const find = (event: string) => logged.find((e) => e.event === event);
    const succeeded = find("refresh.succeeded");
    if (succeeded) {
        return `refreshed      refresh token v${succeeded.refreshVersion}, access token v${succeeded.accessVersion}, expires ${clock(succeeded.expiresAt)} (${succeeded.durationMs} ms)`;
    }
    const attention = logged.find((e) => e.severity === "CRITICAL");
    if (attention) return `NEEDS ATTENTION ${String(attention.message)}`;
    const failed = find("refresh.failed");
    if (failed || result.status >= 500) {
        const why = failed ? String(failed.message) : `HTTP ${result.status} from the function`;
        return `failed         ${why} (Eventarc would redeliver; the next tick retries anyway)`;
    }
    const skipped = find("refresh.skipped");
    if (skipped?.reason === "fresh") {
        const minutes = Math.floor(Number(skipped.secondsLeft) / 60);
        return `still fresh    ${minutes} min left on access token (refresh token v${skipped.refreshVersion}); no call to Bitrix24`;
    }
    if (skipped?.reason === "lease_busy") return "skipped        another invocation holds the lease";
    if (skipped) return `waiting        ${String(skipped.message)}`;
    return `done           HTTP ${result.status}, nothing logged`;
}
