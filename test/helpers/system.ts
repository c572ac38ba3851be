// The whole system on loopback for end-to-end tests: the Secret Manager emulator, the Bitrix24
// sandbox, and the built dist/function/ served by the real functions framework.
import * as fs from "node:fs";
import * as path from "node:path";
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createSecretManagerClient } from "../../function/adapters/secret-manager-store";
import { startBitrix24Sandbox, type Bitrix24Sandbox, type SandboxOptions } from "../../local/bitrix24-sandbox/sandbox";
import { deliverCloudEvent } from "../../local/cloud-event";
import { startSecretManagerEmulator, type SecretManagerEmulator } from "../../local/secret-manager/emulator";
import { serveFunction, type ServedFunction } from "../../local/serve-function";
import { defaultSecretNames, ensureSecrets, storeTokenPair } from "../../local/token-secrets";
import { annotationKeys } from "../../function/core/refresh-state";

const loopbackGuardPath = path.join(__dirname, "loopback-guard.cjs");

export const repoRoot = path.resolve(__dirname, "../..");
export const bundleDir = path.join(repoRoot, "dist", "function");
export const projectId = "demo-project";
export const topic = "b24-token-refresh-trigger";

export interface SystemOptions {
    sandbox?: SandboxOptions;
    env?: Record<string, string>;
}

export interface TestSystem {
    emulator: SecretManagerEmulator;
    sandbox: Bitrix24Sandbox;
    client: SecretManagerServiceClient;
    fn: ServedFunction;
    /** Every token value that ever existed in this system, plus the client secret: for the no-secret check. */
    secretValues(): string[];
    /** The function's output lines parsed as JSON where possible. */
    logEntries(): Array<Record<string, unknown>>;
    deliver(id?: string): Promise<{ status: number; error: string | null }>;
    authorize(): Promise<{ refreshVersion: number; accessVersion: number }>;
    enabledVersions(kind: "refresh" | "access"): number[];
    newestValue(kind: "refresh" | "access"): string | undefined;
    annotations(): Record<string, string>;
    refreshSecret: string;
    accessSecret: string;
    stop(): Promise<void>;
}

/** The deployed functions' environment, pointed at the sandbox and the emulator, with short timeouts for tests. */
export function functionTestEnv(sandbox: Bitrix24Sandbox, emulator: SecretManagerEmulator): Record<string, string> {
    return {
        PROJECT_ID: projectId,
        B24_CLIENT_ID: sandbox.clientId,
        B24_CLIENT_SECRET: sandbox.clientSecret,
        B24_OAUTH_TOKEN_URL: sandbox.tokenUrl,
        B24_PORTAL_DOMAIN: sandbox.portalDomain,
        SECRET_MANAGER_EMULATOR_HOST: emulator.host,
        OAUTH_RESPONSE_TIMEOUT_SECONDS: "2",
        STORE_RETRY_BUDGET_SECONDS: "2",
    };
}

export function assertBundleBuilt(): void {
    if (!fs.existsSync(path.join(bundleDir, "index.js"))) {
        throw new Error("dist/function/index.js is missing: run `npm run build` first (`npm test` does)");
    }
}

export async function startTestSystem(options: SystemOptions = {}): Promise<TestSystem> {
    assertBundleBuilt();
    const emulator = await startSecretManagerEmulator();
    const sandbox = await startBitrix24Sandbox(options.sandbox);
    const client = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    await ensureSecrets(client, projectId);
    const seen = new Set<string>([sandbox.clientSecret]);

    const fn = await serveFunction({
        dir: bundleDir,
        target: "refreshTokens",
        signatureType: "cloudevent",
        nodeOptions: `--require ${loopbackGuardPath}`,
        env: {
            ...functionTestEnv(sandbox, emulator),
            ...options.env,
        },
    });

    const refreshSecret = `projects/${projectId}/secrets/${defaultSecretNames.refresh}`;
    const accessSecret = `projects/${projectId}/secrets/${defaultSecretNames.access}`;
    const secretOf = (kind: "refresh" | "access") => (kind === "refresh" ? refreshSecret : accessSecret);
    const collect = () => {
        for (const name of [refreshSecret, accessSecret]) {
            for (const v of emulator.inspect(name)?.versions ?? []) if (v.payload) seen.add(v.payload);
        }
        for (const call of sandbox.issuedTokens()) seen.add(call);
    };
    let deliveries = 0;

    return {
        emulator,
        sandbox,
        client,
        fn,
        refreshSecret,
        accessSecret,
        secretValues() {
            collect();
            return [...seen];
        },
        logEntries() {
            return fn.lines.flatMap((line) => {
                try {
                    const parsed = JSON.parse(line) as unknown;
                    return parsed && typeof parsed === "object" ? [parsed as Record<string, unknown>] : [];
                } catch {
                    return [];
                }
            });
        },
        async deliver(id) {
            const result = await deliverCloudEvent(fn.url, { projectId, topic, id: id ?? `delivery-${++deliveries}` });
            collect();
            return result;
        },
        async authorize() {
            const pair = sandbox.authorize();
            seen.add(pair.accessToken);
            seen.add(pair.refreshToken);
            return storeTokenPair(client, projectId, pair);
        },
        enabledVersions(kind) {
            return (emulator.inspect(secretOf(kind))?.versions ?? [])
                .filter((v) => v.state === "ENABLED")
                .map((v) => v.number)
                .sort((a, b) => a - b);
        },
        newestValue(kind) {
            const enabled = (emulator.inspect(secretOf(kind))?.versions ?? []).filter((v) => v.state === "ENABLED");
            return enabled.sort((a, b) => b.number - a.number)[0]?.payload;
        },
        annotations() {
            return emulator.inspect(refreshSecret)?.annotations ?? {};
        },
        async stop() {
            collect();
            await fn.stop();
            await client.close();
            await sandbox.stop();
            await emulator.stop();
        },
    };
}

export { annotationKeys };
