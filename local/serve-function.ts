// Serves a built function folder with the real functions framework in a child process, exactly
// as Cloud Run's buildpack does (`functions-framework --target … --signature-type …`).
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer } from "node:net";
import * as path from "node:path";
import * as readline from "node:readline";

// The package's exports hide its bin file; it sits beside the main module.
const frameworkMain = path.join(path.dirname(require.resolve("@google-cloud/functions-framework")), "main.js");

export interface ServedFunction {
    url: string;
    /** The framework's process, e.g. for /proc/PID/status. */
    pid: number;
    /** performance.now() just before the spawn, and when the port first accepted a connection. */
    spawnedAt: number;
    portOpenAt: number;
    /** Every line the function printed, stdout and stderr, in order. */
    lines: string[];
    onLine(listener: (line: string, stream: "stdout" | "stderr") => void): void;
    stop(): Promise<void>;
}

export interface ServeOptions {
    dir: string;
    target: string;
    signatureType: "cloudevent" | "http";
    env: Record<string, string>;
    port?: number;
    startTimeoutMs?: number;
    /** Extra NODE_OPTIONS for the child, e.g. a --require preload. */
    nodeOptions?: string;
    /** How often to try the port while the framework starts (default 50 ms; a benchmark wants less). */
    pollMs?: number;
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
        });
    });
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

export async function serveFunction(options: ServeOptions): Promise<ServedFunction> {
    const port = options.port ?? (await freePort());
    const spawnedAt = performance.now();
    const child: ChildProcess = spawn(
        process.execPath,
        [frameworkMain, `--source=${path.resolve(options.dir)}`, `--target=${options.target}`, `--signature-type=${options.signatureType}`, `--port=${port}`],
        {
            // Only what the function's contract defines, plus what Node itself needs: nothing leaks in from the caller.
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
    const listeners: Array<(line: string, stream: "stdout" | "stderr") => void> = [];
    for (const stream of ["stdout", "stderr"] as const) {
        readline.createInterface({ input: child[stream]! }).on("line", (line) => {
            lines.push(line);
            for (const listener of listeners) listener(line, stream);
        });
    }
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    for (;;) {
        if (child.exitCode !== null) {
            throw new Error(`functions framework exited with code ${child.exitCode} before serving:\n${lines.join("\n")}`);
        }
        // A TCP connect, not a request: the framework's middleware chokes on an empty GET.
        if (await canConnect(port)) break;
        if (Date.now() > deadline) {
            child.kill("SIGKILL");
            throw new Error(`functions framework did not start within the timeout:\n${lines.join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, options.pollMs ?? 50));
    }
    const portOpenAt = performance.now();

    return {
        url,
        pid: child.pid!,
        spawnedAt,
        portOpenAt,
        lines,
        onLine: (listener) => listeners.push(listener),
        async stop() {
            if (child.exitCode === null && child.signalCode === null) {
                child.kill("SIGTERM");
                const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
                await exited;
                clearTimeout(timer);
            }
        },
    };
}
