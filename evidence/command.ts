// What `npm run soak` and `npm run bench` share as commands: bad input → exit 2 with a hint,
// --help → usage, otherwise run and print the report; exit 0 when it passed, 1 when not.

/** Bad command-line input: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

export interface Command<Options> {
    name: "soak" | "bench";
    usage: string;
    parse(argv: string[]): Options | "help";
    /** Runs, prints nothing itself; returns the report and whether everything held. */
    run(options: Options): Promise<{ report: string; ok: boolean }>;
}

export async function runCommand<Options>(command: Command<Options>, argv: string[]): Promise<number> {
    let options: Options | "help";
    try {
        options = command.parse(argv);
    } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        process.stderr.write(`${command.name}: ${error.message}\nRun \`npm run ${command.name} -- --help\` for the options.\n`);
        return 2;
    }
    if (options === "help") {
        process.stdout.write(command.usage);
        return 0;
    }
    const { report, ok } = await command.run(options);
    process.stdout.write(report + "\n");
    return ok ? 0 : 1;
}

/** The script entry: sets the exit code, and reports a crash of the command itself as exit 1. */
export function main<Options>(command: Command<Options>): void {
    runCommand(command, process.argv.slice(2)).then(
        (code) => {
            process.exitCode = code;
        },
        (error: unknown) => {
            process.stderr.write(`${command.name} could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
            process.exitCode = 1;
        },
    );
}
