// `npm run soak`: 30 simulated days of the refresher under seeded faults. Prints a table and exits
// 0 when every invariant holds, 1 when one fails, 2 on bad input.
import { parseArgs } from "node:util";
import { main, UsageError } from "./command";
import { faultCatalogue, faultKinds, type FaultKind } from "./soak/faults";
import { formatSoakReport } from "./soak/report";
import { runSoak, soakDefaults, validateSoakOptions, whatIfs, type SoakOptions, type WhatIf } from "./soak/run-soak";
import { breakModeHelp, breakModes, type BreakMode } from "./soak/wrappers";

const usage = `Usage: npm run soak -- [options]

Runs the refresher's real code (core algorithm, Secret Manager adapter over gRPC, Bitrix24 client
over HTTP) against the local Secret Manager emulator and Bitrix24 sandbox on a simulated clock,
one tick of the schedule after another, with seeded faults. Prints a table; exit code 0 when every
invariant holds, 1 when one fails, 2 on bad input.

Options:
  --days <n>           simulated days (default ${soakDefaults.days})
  --rate <r>           share of ticks that get a fault: 0.1 or 10% (default ${soakDefaults.rate})
  --seed <n>           PRNG seed; the same seed gives the same fault schedule (default ${soakDefaults.seed})
  --faults <a,b,...>   fault kinds to draw from (default: all)
  --jitter <s>         deliveries arrive 0..s seconds after their tick (default ${soakDefaults.jitterSeconds})
  --human-delay <min>  minutes from the CRITICAL alert to the re-authorization (default ${soakDefaults.humanDelayMinutes})
  --break <mode>       break the refresher on purpose, to show the soak catches it
  --what-if <a,b>      simulate proposed refresher changes, to compare the numbers
  --quiet              no progress lines on stderr
  --help               this text

Fault kinds (* may spend a refresh token; such a break must be reported as CRITICAL):
${faultKinds.map((kind) => `  ${kind.padEnd(24)} ${faultCatalogue[kind].consumesToken ? "*" : " "} ${faultCatalogue[kind].what}`).join("\n")}

Break modes:
${breakModes.map((mode) => `  ${mode.padEnd(24)}   ${breakModeHelp[mode]}`).join("\n")}

What-if changes:
${Object.entries(whatIfs).map(([name, what]) => `  ${name.padEnd(24)}   ${what}`).join("\n")}
`;

function number(name: string, raw: string | undefined, fallback: number): number {
    if (raw === undefined) return fallback;
    const trimmed = raw.trim();
    const value = trimmed.endsWith("%") ? Number(trimmed.slice(0, -1)) / 100 : Number(trimmed);
    if (trimmed === "" || !Number.isFinite(value)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
    return value;
}

export function parseSoakArgs(argv: string[]): SoakOptions | "help" {
    let parsed;
    try {
        parsed = parseArgs({
            args: argv,
            options: {
                days: { type: "string" },
                rate: { type: "string" },
                seed: { type: "string" },
                faults: { type: "string" },
                jitter: { type: "string" },
                "human-delay": { type: "string" },
                break: { type: "string" },
                "what-if": { type: "string" },
                quiet: { type: "boolean" },
                help: { type: "boolean", short: "h" },
            },
            strict: true,
            allowPositionals: false,
        });
    } catch (error) {
        throw new UsageError((error as Error).message);
    }
    const v = parsed.values;
    if (v.help) return "help";
    const breakMode = v.break;
    if (breakMode !== undefined && !(breakModes as readonly string[]).includes(breakMode)) {
        throw new UsageError(`--break must be one of ${breakModes.join(", ")}, got "${breakMode}"`);
    }
    const faults = v.faults === undefined ? soakDefaults.faults : v.faults.split(",").map((s) => s.trim()).filter(Boolean);
    if (faults.length === 0) throw new UsageError("--faults needs at least one kind");
    const options: SoakOptions = {
        ...soakDefaults,
        days: number("days", v.days, soakDefaults.days),
        rate: number("rate", v.rate, soakDefaults.rate),
        seed: number("seed", v.seed, soakDefaults.seed),
        faults: faults as FaultKind[],
        jitterSeconds: number("jitter", v.jitter, soakDefaults.jitterSeconds),
        humanDelayMinutes: number("human-delay", v["human-delay"], soakDefaults.humanDelayMinutes),
        breakMode: breakMode as BreakMode | undefined,
        ...(v["what-if"] !== undefined ? { whatIf: v["what-if"].split(",").map((s) => s.trim()).filter(Boolean) as WhatIf[] } : {}),
    };
    if (!v.quiet) options.progress = (line) => process.stderr.write(line + "\n");
    const problems = validateSoakOptions(options);
    if (problems.length > 0) throw new UsageError(problems.join("\n"));
    return options;
}

if (require.main === module) {
    main<SoakOptions>({
        name: "soak",
        usage,
        parse: parseSoakArgs,
        run: async (options) => {
            const result = await runSoak(options);
            return { report: formatSoakReport(result), ok: result.ok };
        },
    });
}
