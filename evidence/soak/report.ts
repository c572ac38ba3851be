// The soak's table: what happened, then each invariant with PASS or FAIL.
import { faultCatalogue, faultKinds } from "./faults";
import type { SoakResult } from "./run-soak";

/** Label/value rows, the labels indented by `depth`, the values in one column. */
function rows(entries: Array<[label: string, value: string, depth?: number]>): string[] {
    const labelOf = ([label, , depth = 0]: (typeof entries)[number]) => `${"  ".repeat(depth + 1)}${label}`;
    const width = Math.max(...entries.map((e) => labelOf(e).length));
    return entries.map((e) => `${labelOf(e).padEnd(width)}  ${e[1]}`);
}

const percent = (part: number, whole: number) => (whole === 0 ? "100.000" : ((100 * part) / whole).toFixed(3));

/** "crash_between_writes 30 min in 3 gaps; none 2 min in 1 gap" */
function gapSummary(gaps: SoakResult["stats"]["gaps"]): string {
    const byCause = new Map<string, { minutes: number; gaps: number }>();
    for (const gap of gaps) {
        const cause = gap.after.length === 0 ? "no fault" : gap.after.join("+");
        const entry = byCause.get(cause) ?? { minutes: 0, gaps: 0 };
        entry.minutes += gap.minutes;
        entry.gaps++;
        byCause.set(cause, entry);
    }
    return [...byCause]
        .sort((a, b) => b[1].minutes - a[1].minutes)
        .map(([cause, e]) => `${cause} ${e.minutes} min in ${e.gaps}`)
        .join("; ");
}

export function formatSoakReport(result: SoakResult): string {
    const { options, stats } = result;
    const o = stats.outcomes;
    const consumed = stats.incidents.filter((i) => i.consumed);
    const broken = stats.incidents.filter((i) => !i.consumed);
    const counted = stats.minutes.total - stats.minutes.awaitingReauthorization;
    const perDay = stats.oauthCallsPerDay;
    const mean = perDay.length === 0 ? 0 : perDay.reduce((a, b) => a + b, 0) / perDay.length;
    const firedTotal = faultKinds.reduce((sum, kind) => sum + stats.faults[kind].fired, 0);
    const injectedTotal = faultKinds.reduce((sum, kind) => sum + stats.faults[kind].injected, 0);

    const lines = [
        `Fault soak: ${options.days} simulated days of "${options.schedule}", seed ${options.seed}, fault rate ${(options.rate * 100).toFixed(1)}% of ticks, ` +
            `margin ${options.marginSeconds} s, KEEP_VERSIONS ${options.keepVersions}` +
            (options.jitterSeconds > 0 ? `, delivery jitter 0-${options.jitterSeconds} s` : "") +
            (options.breakMode ? `, BROKEN ON PURPOSE: ${options.breakMode}` : "") +
            (options.whatIf?.length ? `, WHAT IF: ${options.whatIf.join(" + ")}` : ""),
        "",
        ...rows([
            ["ticks", String(stats.ticks)],
            ["invocations (with duplicates and redeliveries)", `${stats.invocations} (${stats.redeliveries} redeliveries)`],
            ["refreshes", String(o.refreshed)],
            ["skips: fresh / lease busy (of which its own lease)", `${o.fresh} / ${o.lease_busy} (${stats.ownLeaseBusy})`],
            ["failed: transient (redelivered) / crashed / unexpected", `${o.transient} / ${o.crashed} / ${o.unexpected}`],
            ["needs attention (awaiting re-authorization)", String(o.needs_attention)],
            ["faults fired (of injected)", `${firedTotal} (${injectedTotal})`],
            ...faultKinds
                .filter((kind) => options.faults.includes(kind))
                .map((kind): [string, string, number] => [
                    `${kind}${faultCatalogue[kind].consumesToken ? " *" : ""}`,
                    `${stats.faults[kind].fired} (${stats.faults[kind].injected})`,
                    1,
                ]),
            [
                "Secret Manager calls failed UNAVAILABLE",
                Object.entries(stats.unavailableByRpc)
                    .sort((a, b) => b[1] - a[1])
                    .map(([rpc, n]) => `${rpc} ${n}`)
                    .join(", ") || "0",
            ],
            ["chains broken by a spent token (* faults)", `${consumed.length}: ${consumed.filter((i) => i.critical).length} with CRITICAL, ${stats.reauthorizations} re-authorizations`],
            ["broken chains (no token spent)", String(broken.length)],
            ["minutes with no valid access token", `${stats.minutes.invalid} of ${counted} (${percent(stats.minutes.valid, counted)}% valid)`],
            ...(stats.gaps.length > 0 ? [["by the faults of the hour before", gapSummary(stats.gaps), 1] as [string, string, number]] : []),
            ["minutes awaiting re-authorization", String(stats.minutes.awaitingReauthorization)],
            ["OAuth refresh calls per day", `mean ${mean.toFixed(1)}, max ${Math.max(0, ...perDay)}`],
            ["peak active versions (refresh / access)", `${stats.peakActiveVersions.refresh} / ${stats.peakActiveVersions.access}`],
            ["CRITICAL lines (false alarms)", `${stats.criticalLines} (${stats.falseAlarms})`],
            ["output lines containing a secret", `${stats.linesWithSecret} of ${stats.outputLines}`],
            ...(stats.unplannedConsumption > 0
                ? [["token spent by an unplanned timeout (machine too slow)", String(stats.unplannedConsumption)] as [string, string]]
                : []),
            ["real time", `${stats.realSeconds.toFixed(1)} s`],
        ]),
        "",
        "Invariants:",
        ...result.invariants.map((i) => `  ${i.ok ? "PASS" : "FAIL"}  ${i.name}: ${i.detail}`),
        "",
        result.ok ? "soak: every invariant holds" : `soak: ${result.invariants.filter((i) => !i.ok).length} invariant(s) FAILED`,
    ];
    return lines.join("\n");
}
