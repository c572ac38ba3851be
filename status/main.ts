// Entry point of `npm run status` (see status/cli.ts for the command and its exit codes).
import { main } from "./cli";

main(process.argv.slice(2)).then(
    (code) => {
        process.exitCode = code;
    },
    (error: unknown) => {
        process.stderr.write(`status failed unexpectedly: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 70;
    },
);
