// The Log port for Cloud Logging: one JSON object per line with `severity` and `message`, which
// Cloud Run/Functions parse into structured entries. Every line passes the redactor.
import type { Log, LogEntry } from "../core/ports";
import type { Redactor } from "./redactor";

export function createJsonLog(redactor: Redactor, write: (line: string) => void = (line) => process.stdout.write(line + "\n")): Log {
    return {
        write(entry: LogEntry) {
            let line: string;
            try {
                line = JSON.stringify(entry);
            } catch {
                line = JSON.stringify({ severity: entry.severity, message: entry.message, event: entry.event });
            }
            write(redactor.scrub(line));
        },
    };
}
