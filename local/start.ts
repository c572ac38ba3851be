// `npm start`: the whole system on this machine, as a user would try it before deploying —
// the Secret Manager emulator, the bundled refresher under the functions framework, and a local
// scheduler that delivers the same Pub/Sub CloudEvent as Cloud Scheduler + Eventarc would.
// Against the Bitrix24 sandbox with demo credentials by default; against a real portal when
// B24_CLIENT_ID, B24_CLIENT_SECRET and B24_REFRESH_TOKEN are set (a .env file works).
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { CronExpressionParser } from "cron-parser";
import { createSecretManagerClient } from "../function/adapters/secret-manager-store";
import { buildFunctionBundle, repoRoot } from "../infra/function-bundle";
import { startBitrix24Sandbox, type Bitrix24Sandbox } from "./bitrix24-sandbox/sandbox";
import { deliverCloudEvent } from "./cloud-event";
import { startSecretManagerEmulator } from "./secret-manager/emulator";
import { serveFunction } from "./serve-function";
import { summarizeTick } from "./tick-summary";
import { addSecretValue, defaultSecretNames, ensureSecrets, storeTokenPair } from "./token-secrets";

const usage = `Usage: npm start [-- options]

Runs the refresher locally: Secret Manager emulator + bundled function + local scheduler.

Options:
  --schedule CRON     when to deliver ticks (default "*/10 * * * *"; six fields allow seconds, e.g. "*/5 * * * * *")
  --time-zone TZ      IANA time zone for the schedule (default: this machine's)
  --ticks N           stop after N ticks (default: run until Ctrl+C)
  --fresh             forget the local Secret Manager state (real-portal mode only)
  --state-dir DIR     where a real-portal run keeps its Secret Manager state (default .local-state)
  --help              this text

Real portal: put B24_CLIENT_ID, B24_CLIENT_SECRET, B24_REFRESH_TOKEN (and optionally
B24_PORTAL_DOMAIN, B24_OAUTH_TOKEN_URL) in the environment or in .env. The token chain is kept
in .local-state/secret-manager.json, because a used refresh token never works again.`;

const projectId = "local-project";

function fail(message: string): never {
    console.error(`npm start: ${message}\n\n${usage}`);
    process.exit(2);
}

function options() {
    try {
        return parseArgs({
            options: {
                schedule: { type: "string", default: "*/10 * * * *" },
                "time-zone": { type: "string" },
                ticks: { type: "string" },
                fresh: { type: "boolean", default: false },
                "state-dir": { type: "string", default: path.join(repoRoot, ".local-state") },
                help: { type: "boolean", default: false },
            },
            strict: true,
        }).values;
    } catch (error) {
        fail((error as Error).message);
    }
}

async function main(): Promise<void> {
    const args = options();
    if (args.help) {
        console.log(usage);
        return;
    }
    if (fs.existsSync(path.join(repoRoot, ".env"))) process.loadEnvFile(path.join(repoRoot, ".env"));
    const stateFile = path.join(path.resolve(args["state-dir"]), "secret-manager.json");
    const timeZone = args["time-zone"] ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    let cron;
    try {
        cron = CronExpressionParser.parse(args.schedule, { tz: timeZone });
    } catch (error) {
        fail(`--schedule "${args.schedule}" is not a valid cron expression (${(error as Error).message}); try "*/10 * * * *"`);
    }
    const ticks = args.ticks === undefined ? Infinity : Number(args.ticks);
    if (!(ticks >= 1) || !Number.isInteger(ticks === Infinity ? 1 : ticks)) fail(`--ticks must be a whole number of at least 1, got "${args.ticks}"`);

    const real = {
        clientId: process.env.B24_CLIENT_ID?.trim(),
        clientSecret: process.env.B24_CLIENT_SECRET?.trim(),
        refreshToken: process.env.B24_REFRESH_TOKEN?.trim(),
    };
    const realMode = Boolean(real.clientId || real.clientSecret || real.refreshToken);
    if (realMode && !(real.clientId && real.clientSecret && real.refreshToken)) {
        const missing = Object.entries({ B24_CLIENT_ID: real.clientId, B24_CLIENT_SECRET: real.clientSecret, B24_REFRESH_TOKEN: real.refreshToken })
            .filter(([, v]) => !v)
            .map(([k]) => k);
        fail(`a real-portal run needs B24_CLIENT_ID, B24_CLIENT_SECRET and B24_REFRESH_TOKEN; missing: ${missing.join(", ")}`);
    }

    process.stdout.write("building dist/function … ");
    const bundle = await buildFunctionBundle();
    const bytes = bundle.files.reduce((sum, f) => sum + f.bytes, 0);
    console.log(`${(bytes / 1024 / 1024).toFixed(2)} MiB`);

    if (realMode && args.fresh) fs.rmSync(stateFile, { force: true });
    if (realMode) fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    const emulator = await startSecretManagerEmulator(realMode ? { persistPath: stateFile } : {});
    const client = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    await ensureSecrets(client, projectId);

    let sandbox: Bitrix24Sandbox | undefined;
    let env: Record<string, string>;
    if (realMode) {
        const [versions] = await client.listSecretVersions({ parent: `projects/${projectId}/secrets/${defaultSecretNames.refresh}`, filter: "state:ENABLED" });
        if (versions.length === 0) {
            await addSecretValue(client, projectId, defaultSecretNames.refresh, real.refreshToken!);
            console.log("stored B24_REFRESH_TOKEN as the first refresh-token version");
        } else {
            console.log(`using the refresh token chain kept in ${path.relative(process.cwd(), stateFile)} (B24_REFRESH_TOKEN is only read on the first run; --fresh starts over)`);
        }
        env = {
            B24_CLIENT_ID: real.clientId!,
            B24_CLIENT_SECRET: real.clientSecret!,
            ...(process.env.B24_OAUTH_TOKEN_URL ? { B24_OAUTH_TOKEN_URL: process.env.B24_OAUTH_TOKEN_URL } : {}),
            ...(process.env.B24_PORTAL_DOMAIN ? { B24_PORTAL_DOMAIN: process.env.B24_PORTAL_DOMAIN } : {}),
        };
    } else {
        sandbox = await startBitrix24Sandbox();
        await storeTokenPair(client, projectId, sandbox.authorize());
        env = {
            B24_CLIENT_ID: sandbox.clientId,
            B24_CLIENT_SECRET: sandbox.clientSecret,
            B24_OAUTH_TOKEN_URL: sandbox.tokenUrl,
            B24_PORTAL_DOMAIN: sandbox.portalDomain,
        };
    }

    const fn = await serveFunction({
        dir: bundle.dir,
        target: "refreshTokens",
        signatureType: "cloudevent",
        env: { PROJECT_ID: projectId, SECRET_MANAGER_EMULATOR_HOST: emulator.host, ...env },
    });

    console.log(`Secret Manager emulator  ${emulator.host}${realMode ? ` (kept in ${path.relative(process.cwd(), stateFile)})` : " (in memory)"}`);
    console.log(`Bitrix24                 ${sandbox ? `sandbox at ${sandbox.url} (demo credentials)` : env.B24_OAUTH_TOKEN_URL ?? "https://oauth.bitrix.info/oauth/token/"}`);
    console.log(`refresher                ${path.relative(process.cwd(), bundle.dir)} under the functions framework at ${fn.url}`);
    console.log(`schedule                 "${args.schedule}" in ${timeZone}; first tick now`);
    console.log(`read the token yourself  SECRET_MANAGER_EMULATOR_HOST=${emulator.host} PROJECT_ID=${projectId} (secret ${defaultSecretNames.access})`);
    console.log("Ctrl+C stops.\n");

    let stopping = false;
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    const stop = async () => {
        stopping = true;
        if (timer) clearTimeout(timer);
        wake?.();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);

    for (let tick = 1; tick <= ticks && !stopping; tick++) {
        if (tick > 1) {
            const next = cron.next().toDate();
            await new Promise<void>((resolve) => {
                wake = resolve;
                timer = setTimeout(resolve, Math.max(0, next.getTime() - Date.now()));
            });
            if (stopping) break;
        }
        const before = fn.lines.length;
        const answer = await deliverCloudEvent(fn.url, { projectId, topic: "b24-token-refresh-trigger", id: `local-${tick}` });
        await new Promise((r) => setTimeout(r, 20)); // let the child's last lines arrive
        const line = summarizeTick({ status: answer.status, lines: fn.lines.slice(before) });
        console.log(`${new Date().toTimeString().slice(0, 8)}  ${line}`);
    }

    await fn.stop();
    await client.close();
    await sandbox?.stop();
    await emulator.stop();
}

main().catch((error: unknown) => {
    console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
});
