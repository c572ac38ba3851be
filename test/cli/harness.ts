// `npm run authorize` driven as a user drives it: a child process (tsx, as the npm script runs it)
// against the Secret Manager emulator and the Bitrix24 sandbox, its output read line by line, its
// stdin written to, and the browser played by fetch.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createSecretManagerClient } from "../../function/adapters/secret-manager-store";
import { startBitrix24Sandbox, type Bitrix24Sandbox, type SandboxOptions } from "../../local/bitrix24-sandbox/sandbox";
import { startSecretManagerEmulator, type SecretManagerEmulator } from "../../local/secret-manager/emulator";
import { addSecretValue, defaultSecretNames, ensureSecrets } from "../../local/token-secrets";
import { childEnv, tsxBin } from "../helpers/run-child";
import { projectId, repoRoot } from "../helpers/system";


export interface CliRun {
    child: ChildProcessWithoutNullStreams;
    /** Everything printed so far. */
    output(): { stdout: string; stderr: string };
    /** Resolves with the first printed line matching `pattern` (stdout or stderr). */
    waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
    exited: Promise<number | null>;
}

export function runCli(args: string[], env: Record<string, string>): CliRun {
    const child = spawn(tsxBin, ["cli/authorize.ts", ...args], {
        cwd: repoRoot,
        env: childEnv(env),
        stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
    const check = () => {
        for (const waiter of [...waiters]) {
            const line = `${stdout}\n${stderr}`.split("\n").find((l) => waiter.pattern.test(l));
            if (line !== undefined) {
                waiters.splice(waiters.indexOf(waiter), 1);
                waiter.resolve(line);
            }
        }
    };
    child.stdout.on("data", (d) => {
        stdout += d;
        check();
    });
    child.stderr.on("data", (d) => {
        stderr += d;
        check();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return {
        child,
        output: () => ({ stdout, stderr }),
        exited,
        waitForLine(pattern, timeoutMs = 20_000) {
            return new Promise((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`)), timeoutMs);
                const waiter = {
                    pattern,
                    resolve: (line: string) => {
                        clearTimeout(timer);
                        resolve(line);
                    },
                };
                waiters.push(waiter);
                exited.then(() => {
                    check();
                    if (waiters.includes(waiter)) {
                        clearTimeout(timer);
                        reject(new Error(`the CLI exited before printing a line matching ${pattern}:\n${stdout}\n${stderr}`));
                    }
                });
                check();
            });
        },
    };
}

export interface CliWorld {
    emulator: SecretManagerEmulator;
    sandbox: Bitrix24Sandbox;
    client: SecretManagerServiceClient;
    /** Environment for the CLI child: emulator, sandbox token endpoint, short retries. */
    env: Record<string, string>;
    /** Arguments every run needs. */
    args: string[];
    refreshSecret: string;
    accessSecret: string;
    versions(kind: "refresh" | "access"): Array<{ number: number; payload?: string; state: string }>;
    newest(kind: "refresh" | "access"): string | undefined;
    annotations(): Record<string, string>;
    stop(): Promise<void>;
}

export async function startCliWorld(options: { sandbox?: SandboxOptions; clientSecret?: string } = {}): Promise<CliWorld> {
    const emulator = await startSecretManagerEmulator();
    const sandbox = await startBitrix24Sandbox(options.sandbox);
    const client = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    await ensureSecrets(client, projectId);
    await addSecretValue(client, projectId, defaultSecretNames.clientId, sandbox.clientId);
    await addSecretValue(client, projectId, defaultSecretNames.clientSecret, options.clientSecret ?? sandbox.clientSecret);
    const refreshSecret = `projects/${projectId}/secrets/${defaultSecretNames.refresh}`;
    const accessSecret = `projects/${projectId}/secrets/${defaultSecretNames.access}`;
    const secretOf = (kind: "refresh" | "access") => (kind === "refresh" ? refreshSecret : accessSecret);
    const versions = (kind: "refresh" | "access") => emulator.inspect(secretOf(kind))?.versions ?? [];
    return {
        emulator,
        sandbox,
        client,
        env: {
            SECRET_MANAGER_EMULATOR_HOST: emulator.host,
            STORE_RETRY_BUDGET_SECONDS: "2",
            B24_OAUTH_TOKEN_URL: sandbox.tokenUrl,
        },
        args: ["--project", projectId, "--portal", sandbox.portalDomain],
        refreshSecret,
        accessSecret,
        versions,
        newest: (kind) =>
            versions(kind)
                .filter((v) => v.state === "ENABLED")
                .sort((a, b) => b.number - a.number)[0]?.payload,
        annotations: () => emulator.inspect(refreshSecret)?.annotations ?? {},
        async stop() {
            await client.close();
            await sandbox.stop();
            await emulator.stop();
        },
    };
}

/** Plays the browser: opens the printed authorize address on the sandbox and returns where Bitrix24 redirects. */
export async function browserAuthorize(world: CliWorld, printedUrl: string): Promise<URL> {
    const printed = new URL(printedUrl);
    const response = await fetch(`${world.sandbox.url}${printed.pathname}${printed.search}`, { redirect: "manual" });
    await response.arrayBuffer();
    if (response.status !== 302) throw new Error(`the sandbox answered ${response.status} to the authorize address`);
    return new URL(response.headers.get("location")!);
}

/** The authorize address the CLI printed (the line holding https://PORTAL/oauth/authorize/). */
export async function printedAuthorizeUrl(run: CliRun, portal: string): Promise<string> {
    const line = await run.waitForLine(new RegExp(`https://${portal.replace(/\./g, "\\.")}/oauth/authorize/\\?`));
    return line.trim();
}
