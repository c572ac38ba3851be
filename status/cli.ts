// `npm run status`: is the token rotation healthy? Reads metadata only (annotations, version
// numbers, states and times), never a token, from a project or from the emulator. The entry
// point is status/main.ts; this module is the command, importable by tests.
import { parseArgs } from "node:util";
import { exitCodes, usageExitCode, assess, type StatusReport } from "./assess";
import { renderHuman, renderJson } from "./render";
import type { SnapshotError } from "./snapshot";

export const usage = `Usage: npm run status -- [--project ID] [--prefix b24] [--json] [--stale-minutes 5] [--timeout 10]

Shows the state of the Bitrix24 token rotation: the access token's age and expiry, the versions
of each secret, the refresher's lease and its last recorded failure. Reads metadata only, never
a token.

Options:
  --project ID         Google Cloud project (default: PROJECT_ID, then GOOGLE_CLOUD_PROJECT)
  --prefix NAME        the portal's secret prefix (default b24: b24-access-token, b24-refresh-token, ...)
  --json               print one JSON object, for scripts
  --stale-minutes N    call the token stale with less than N minutes left (default 5; a working
                       refresher always leaves at least 10)
  --timeout SECONDS    how long to wait for Secret Manager (default 10)
  -h, --help           this text

Credentials: application-default credentials (gcloud auth application-default login), or the
emulator named by SECRET_MANAGER_EMULATOR_HOST=host:port.

Exit codes:
  0   healthy
  1   stale or expired: the refresher is not keeping the token fresh (check the scheduler and the function's logs)
  2   not authorized yet, or the refresher stopped on a failure that needs a human (npm run authorize)
  3   Secret Manager unreachable, no credentials, access refused, or the secrets do not exist
  64  bad command line
`;

class UsageError extends Error {}

interface Options {
    projectId: string;
    prefix: string;
    json: boolean;
    staleBelowMs: number;
    timeoutMs: number;
    emulatorHost?: string;
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | "help" {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            options: {
                project: { type: "string" },
                prefix: { type: "string", default: "b24" },
                json: { type: "boolean", default: false },
                "stale-minutes": { type: "string", default: "5" },
                timeout: { type: "string", default: "10" },
                help: { type: "boolean", short: "h", default: false },
            },
            strict: true,
            allowPositionals: false,
        }));
    } catch (error) {
        throw new UsageError((error as Error).message);
    }
    if (values.help) return "help";
    const projectId = (values.project ?? env.PROJECT_ID ?? env.GOOGLE_CLOUD_PROJECT ?? "").trim();
    if (!projectId) throw new UsageError("no project: pass --project ID (or set PROJECT_ID)");
    if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(projectId)) throw new UsageError(`--project "${projectId}" is not a Google Cloud project id`);
    const prefix = values.prefix ?? "b24";
    if (!/^[a-z](?:[a-z0-9-]{0,12}[a-z0-9])?$/.test(prefix)) throw new UsageError(`--prefix "${prefix}" must be 1-14 lowercase letters, digits or hyphens`);
    const number = (flag: string, raw: string, min: number, max: number) => {
        const n = Number(raw);
        if (!/^\d+(\.\d+)?$/.test(raw) || n < min || n > max) throw new UsageError(`--${flag} must be a number from ${min} to ${max}, got "${raw}"`);
        return n;
    };
    const emulatorHost = env.SECRET_MANAGER_EMULATOR_HOST?.trim() || undefined;
    return {
        projectId,
        prefix,
        json: values.json ?? false,
        staleBelowMs: number("stale-minutes", values["stale-minutes"] ?? "5", 0, 60) * 60_000,
        timeoutMs: number("timeout", values.timeout ?? "10", 0.1, 120) * 1000,
        ...(emulatorHost ? { emulatorHost } : {}),
    };
}

function unreachableReport(options: Options, error: SnapshotError | Error): StatusReport {
    return {
        state: "unreachable",
        exitCode: exitCodes.unreachable,
        summary: error.message,
        fix:
            (error as Partial<SnapshotError>).code === "permission_denied"
                ? "Grant yourself roles/secretmanager.viewer on the project, or run this with an account that has it."
                : options.emulatorHost
                  ? `Is the emulator running at ${options.emulatorHost}? Start one with \`npm run emulator\` or \`npm start\`.`
                  : "Check the project id, your network, and `gcloud auth application-default login`.",
        project: options.projectId,
        emulatorHost: options.emulatorHost ?? null,
        checkedAt: new Date().toISOString(),
        accessToken: null,
        refreshToken: null,
        lastRefreshAt: null,
        lease: null,
        lastFailure: null,
        secrets: [],
    };
}

export interface Io {
    out: (text: string) => void;
    err: (text: string) => void;
}

const processIo: Io = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

/** Runs the command; returns the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, io: Io = processIo): Promise<number> {
    let options: Options | "help";
    try {
        options = parseOptions(argv, env);
    } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        io.err(`status: ${error.message}\n\n${usage}`);
        return usageExitCode;
    }
    if (options === "help") {
        io.out(usage);
        return 0;
    }

    // Loaded only now: the gRPC client takes a while to load, and --help or a usage error need none of it.
    const [{ createSecretManagerClient }, { readSnapshot, statusSecretNames }] = await Promise.all([
        import("../function/adapters/secret-manager-store"),
        import("./snapshot"),
    ]);
    const names = statusSecretNames(options.prefix);
    let snapshot: Awaited<ReturnType<typeof readSnapshot>> | undefined;
    let failure: Error | undefined;
    let client: ReturnType<typeof createSecretManagerClient> | undefined;
    try {
        client = createSecretManagerClient({ projectId: options.projectId, ...(options.emulatorHost ? { emulatorHost: options.emulatorHost } : {}) });
        snapshot = await readSnapshot(client, { projectId: options.projectId, names, timeoutMs: options.timeoutMs });
    } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
    } finally {
        await client?.close().catch(() => undefined);
    }

    const assessOptions = {
        nowMs: Date.now(),
        staleBelowMs: options.staleBelowMs,
        prefix: options.prefix,
        ...(options.emulatorHost ? { emulatorHost: options.emulatorHost } : {}),
    };
    let report: StatusReport;
    if (!snapshot) {
        report = unreachableReport(options, failure ?? new Error("Secret Manager gave no answer"));
    } else {
        const missing = [snapshot.secrets.access, snapshot.secrets.refresh].filter((s) => !s.exists).map((s) => s.id);
        if (missing.length > 0) {
            const verb = missing.length > 1 ? "do" : "does";
            report = unreachableReport(options, new Error(`${missing.join(" and ")} ${verb} not exist in project ${options.projectId}`));
            report.fix = "Deploy the stack (`pulumi up`), or check --project and --prefix.";
            report.secrets = assess(snapshot, assessOptions).secrets;
        } else {
            report = assess(snapshot, assessOptions);
        }
    }
    io.out(options.json ? renderJson(report) : renderHuman(report));
    return report.exitCode;
}

