// Starts a function folder under the real functions framework in a child process, with the same
// command line and environment as local/serve-function.ts, but keeping what a benchmark needs:
// the child's pid (for /proc/PID/status) and the instants of spawn and port open, polled every 5 ms
// (serveFunction polls every 50 ms and does not expose the child).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { connect } from "node:net";
import * as path from "node:path";
import * as readline from "node:readline";
import { freePort } from "../../local/serve-function";

const frameworkMain = path.join(path.dirname(require.resolve("@google-cloud/functions-framework")), "main.js");

export interface FunctionChildOptions {
    dir: string;
    target: string;
    env: Record<string, string>;
    nodeOptions?: string;
    startTimeoutMs?: number;
}

export interface FunctionChild {
    pid: number;
    url: string;
    lines: string[];
    /** performance.now() just before spawn, and when the port first accepted a connection. */
    spawnedAt: number;
    portOpenAt: number;
    /** Peak resident set size so far, from /proc/PID/status, in bytes; undefined where /proc is missing. */
    peakRssBytes(): number | undefined;
    stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = connect({ host: "127.0.0.1", port });
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
    });
}

export async function startFunctionChild(options: FunctionChildOptions): Promise<FunctionChild> {
    const port = await freePort();
    const spawnedAt = performance.now();
    const child = spawn(
        process.execPath,
        [frameworkMain, `--source=${path.resolve(options.dir)}`, `--target=${options.target}`, "--signature-type=cloudevent", `--port=${port}`],
        {
            env: {
                PATH: process.env.PATH ?? "",
                HOME: process.env.HOME ?? "/tmp",
                NODE_ENV: "production",
                ...(options.nodeOptions ? { NODE_OPTIONS: options.nodeOptions } : {}),
                ...options.env,
            },
            stdio: ["ignore", "pipe", "pipe"],
        },
    );
    const lines: string[] = [];
    for (const stream of [child.stdout, child.stderr]) readline.createInterface({ input: stream }).on("line", (line) => lines.push(line));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
        if (child.exitCode !== null) throw new Error(`functions framework exited with code ${child.exitCode} before serving:\n${lines.join("\n")}`);
        if (await canConnect(port)) break;
        if (Date.now() > deadline) {
            child.kill("SIGKILL");
            throw new Error(`functions framework did not start within the timeout:\n${lines.join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 5));
    }
    const portOpenAt = performance.now();

    return {
        pid: child.pid!,
        url: `http://127.0.0.1:${port}`,
        lines,
        spawnedAt,
        portOpenAt,
        peakRssBytes() {
            try {
                const kib = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1];
                return kib === undefined ? undefined : Number(kib) * 1024;
            } catch {
                return undefined;
            }
        },
        async stop() {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
            await exited;
            clearTimeout(timer);
        },
    };
}
