// The report as people read it: a short block of facts, the fix when there is one, and the
// versions per secret. `--json` prints the StatusReport itself.
import { humanDuration, type StatusReport } from "./assess";

function when(isoTime: string | null, nowMs: number): string {
    if (!isoTime) return "unknown";
    const ms = Date.parse(isoTime);
    const at = isoTime.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
    const delta = ms - nowMs;
    return `${at} (${delta >= 0 ? `in ${humanDuration(delta)}` : `${humanDuration(delta)} ago`})`;
}

function table(rows: string[][]): string[] {
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("   ").trimEnd());
}

export function renderHuman(report: StatusReport): string {
    const now = Date.parse(report.checkedAt);
    const where = report.emulatorHost ? `Secret Manager emulator at ${report.emulatorHost}` : "Secret Manager";
    const lines: string[] = [`Bitrix24 token rotation: project ${report.project} (${where})`, ""];
    const fact = (label: string, text: string) => lines.push(`  ${label.padEnd(14)} ${text}`);
    fact("state", `${report.state.toUpperCase().replace("_", " ")}: ${report.summary}`);
    if (report.state !== "unreachable") {
        const a = report.accessToken;
        fact(
            "access token",
            a
                ? `v${a.version}, expires ${when(a.expiresAt, now)}${a.expirySource === "estimated" ? " (estimated: created + 1 h)" : ""}` +
                      (a.ageSeconds === null ? "" : `, issued ${humanDuration(a.ageSeconds * 1000)} ago`)
                : "none stored",
        );
        const r = report.refreshToken;
        fact("refresh token", r ? `v${r.version}, stored ${r.ageSeconds === null ? "at an unknown time" : `${humanDuration(r.ageSeconds * 1000)} ago`}` : "none stored");
        fact("last refresh", report.lastRefreshAt ? when(report.lastRefreshAt, now) : "none recorded");
        const l = report.lease;
        fact("lease", l ? `held by ${l.holder} until ${when(l.expiresAt, now)}${l.expired ? ": expired, the next tick takes it over" : ""}` : "free");
        const f = report.lastFailure;
        fact(
            "last failure",
            f
                ? `${f.code} with refresh token v${f.refreshVersion}, logged ${when(f.loggedAt, now)}${f.active ? "" : "; resolved since (a newer refresh token was stored)"}`
                : "none recorded",
        );
    }
    if (report.fix) {
        lines.push("");
        fact("fix", report.fix);
    }
    if (report.secrets.length > 0) {
        lines.push("");
        const rows = [["secret", "enabled", "disabled", "destroyed", "newest"]];
        for (const s of report.secrets) {
            rows.push(s.exists ? [s.id, String(s.enabled), String(s.disabled), String(s.destroyed), s.newest === null ? "-" : `v${s.newest}`] : [s.id, "missing", "", "", ""]);
        }
        lines.push(...table(rows).map((line) => `  ${line}`));
    }
    return lines.join("\n") + "\n";
}

export function renderJson(report: StatusReport): string {
    return JSON.stringify(report, null, 2) + "\n";
}
