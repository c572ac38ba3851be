// Runs one of the project's commands as a user would — a child process under tsx, as the npm
// scripts do — with a minimal environment and the loopback guard preloaded, and collects its output.
import { spawn } from "node:child_process";
import * as path from "node:path";

export const repoRootDir = path.resolve(__dirname, "../..");
export const tsxBin = path.join(repoRootDir, "node_modules", ".bin", "tsx");
export const loopbackGuard = path.join(repoRootDir, "test", "helpers", "loopback-guard.cjs");

export interface ChildResult {
    code: number | null;
    out: string;
    err: string;
}

/** The environment every child starts from: nothing leaks in from the test process. */
export function childEnv(env: Record<string, string> = {}): Record<string, string> {
    return { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", NODE_OPTIONS: `--require ${loopbackGuard}`, ...env };
}

export function runChild(command: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<ChildResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(command[0]!, command.slice(1), {
            cwd: options.cwd ?? repoRootDir,
            env: childEnv(options.env),
            stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("error", reject);
        child.on("exit", (code) => resolve({ code, out, err }));
    });
}

/** `tsx script args…` from the repository root, as `npm run <script>` runs it. */
export function runTsx(script: string, args: string[] = [], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<ChildResult> {
    return runChild([tsxBin, script, ...args], options);
}
