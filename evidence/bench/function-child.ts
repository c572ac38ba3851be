// A function folder served by the real functions framework (local/serve-function.ts, the same
// command line `npm start` and the tests use), plus what a benchmark reads off the child: its peak
// memory from /proc/PID/status. The port is polled every 5 ms so start-up is timed closely.
import * as fs from "node:fs";
import { serveFunction, type ServedFunction } from "../../local/serve-function";

export interface FunctionChildOptions {
    dir: string;
    target: string;
    env: Record<string, string>;
    nodeOptions?: string;
    startTimeoutMs?: number;
}

export interface FunctionChild extends ServedFunction {
    /** Peak resident set size so far, in bytes; undefined where /proc is missing. */
    peakRssBytes(): number | undefined;
}

export async function startFunctionChild(options: FunctionChildOptions): Promise<FunctionChild> {
    const served = await serveFunction({
        dir: options.dir,
        target: options.target,
        signatureType: "cloudevent",
        env: options.env,
        nodeOptions: options.nodeOptions,
        startTimeoutMs: options.startTimeoutMs ?? 30_000,
        pollMs: 5,
    });
    return {
        ...served,
        peakRssBytes() {
            try {
                const kib = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${served.pid}/status`, "utf8"))?.[1];
                return kib === undefined ? undefined : Number(kib) * 1024;
            } catch {
                return undefined;
            }
        },
    };
}
