// The benchmark's table: each measure for the floor, the unbundled reference and the bundle, and
// the ratios the README quotes.
import { median, percentile, type BenchResult, type VariantName } from "./run-bench";

const ms = (value: number) => (Number.isNaN(value) ? "-" : `${value.toFixed(0)} ms`);
const mib = (bytes: number) => (Number.isNaN(bytes) ? "-" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`);
const ratio = (a: number, b: number) => (Number.isFinite(a / b) && b > 0 ? `x${(a / b).toFixed(2)}` : "-");

interface Row {
    label: string;
    value: (name: VariantName) => number;
    format: (value: number) => string;
    /** The floor does no refresh: the ratio against it is still the cost of the refresher. */
    vsFloor: boolean;
}

export function formatBenchReport(result: BenchResult): string {
    const v = result.variants;
    const rows: Row[] = [
        { label: "cold start: spawn to port open (median)", value: (n) => median(v[n].portOpenMs), format: ms, vsFloor: true },
        { label: "cold start: spawn to first 204 (median)", value: (n) => median(v[n].firstDoneMs), format: ms, vsFloor: true },
        { label: "warm delivery latency, median", value: (n) => median(v[n].warmMs), format: ms, vsFloor: true },
        { label: "warm delivery latency, p95", value: (n) => percentile(v[n].warmMs, 95), format: ms, vsFloor: true },
        { label: "peak memory VmHWM (median)", value: (n) => median(v[n].peakRssBytes), format: mib, vsFloor: true },
        { label: "deployed besides the framework", value: (n) => v[n].size.bytes, format: mib, vsFloor: false },
    ];
    const header = ["", "floor (no-op)", "unbundled", "bundle", "bundle/unbundled", "bundle/floor"];
    const table = rows.map((row) => {
        const f = row.value("floor");
        const u = row.value("unbundled");
        const b = row.value("bundle");
        return [row.label, row.format(f), row.format(u), row.format(b), ratio(b, u), row.vsFloor ? ratio(b, f) : "-"];
    });
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    const bundleSize = v.bundle.size;
    return [
        `Cold-start benchmark: ${result.options.runs} cold starts and ${result.options.warm} warm deliveries per variant; ${result.machine}`,
        "  floor:     " + v.floor.what,
        "  unbundled: " + v.unbundled.what + ` (${v.unbundled.size.note})`,
        "  bundle:    " + v.bundle.what + (bundleSize.gzipBytes ? ` (${mib(bundleSize.bytes)}, ${mib(bundleSize.gzipBytes)} gzipped)` : ""),
        "  Every refresher delivery is a real refresh (sandbox access tokens live 10 min, inside the 20-min margin).",
        "",
        "  " + line(header),
        ...table.map((r) => "  " + line(r)),
        "",
        `  samples: cold starts ${v.bundle.firstDoneMs.map((x) => x.toFixed(0)).join(", ")} ms (bundle), ` +
            `${v.unbundled.firstDoneMs.map((x) => x.toFixed(0)).join(", ")} ms (unbundled), ${v.floor.firstDoneMs.map((x) => x.toFixed(0)).join(", ")} ms (floor)`,
        `  real time ${result.realSeconds.toFixed(1)} s` + (result.failures.length > 0 ? `\n  FAILED deliveries: ${result.failures.join("; ")}` : ""),
    ].join("\n");
}
