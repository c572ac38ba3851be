// `npm run bench`: cold start, warm latency, peak memory and size of the built bundle under the
// functions framework, against a no-op function (the floor) and the unbundled refresher. Exit code
// 0 when every delivery answered 204 with a real refresh, 1 otherwise, 2 on bad input.
import { parseArgs } from "node:util";
import { main, UsageError } from "./command";
import { formatBenchReport } from "./bench/report";
import { benchDefaults, runBench, validateBenchOptions, type BenchOptions } from "./bench/run-bench";

const usage = `Usage: npm run bench -- [options]

Builds the refresher bundle (into dist/bench/) and an unbundled reference, then starts each under the
real functions framework with the Secret Manager emulator and the Bitrix24 sandbox on 127.0.0.1,
next to a no-op function as the floor. Prints the table and the ratios. Takes about a minute.

Options:
  --runs <n>   cold starts per variant (default ${benchDefaults.runs})
  --warm <n>   warm deliveries per variant, spread over the runs (default ${benchDefaults.warm})
  --quiet      no progress lines on stderr
  --help       this text
`;

export function parseBenchArgs(argv: string[]): BenchOptions | "help" {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            options: { runs: { type: "string" }, warm: { type: "string" }, quiet: { type: "boolean" }, help: { type: "boolean", short: "h" } },
            strict: true,
            allowPositionals: false,
        }));
    } catch (error) {
        throw new UsageError((error as Error).message);
    }
    if (values.help) return "help";
    const whole = (name: string, raw: string | undefined, fallback: number) => {
        if (raw === undefined) return fallback;
        if (!/^\d+$/.test(raw.trim())) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
        return Number(raw.trim());
    };
    const options: BenchOptions = { runs: whole("runs", values.runs, benchDefaults.runs), warm: whole("warm", values.warm, benchDefaults.warm) };
    if (!values.quiet) options.progress = (line) => process.stderr.write(line + "\n");
    const problems = validateBenchOptions(options);
    if (problems.length > 0) throw new UsageError(problems.join("\n"));
    return options;
}

if (require.main === module) {
    main<BenchOptions>({
        name: "bench",
        usage,
        parse: parseBenchArgs,
        run: async (options) => {
            const result = await runBench(options);
            return { report: formatBenchReport(result), ok: result.failures.length === 0 };
        },
    });
}
