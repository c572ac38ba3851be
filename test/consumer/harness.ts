// The consumer's world on loopback: the Secret Manager emulator and a Bitrix24 sandbox, the four
// secrets, and helpers that store and rotate tokens the way the refresher does.
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createSecretManagerClient } from "../../function/adapters/secret-manager-store";
import { accessAnnotationKeys } from "../../function/core/refresh-state";
import { startBitrix24Sandbox, type Bitrix24Sandbox, type SandboxOptions } from "../../local/bitrix24-sandbox/sandbox";
import { startSecretManagerEmulator, type SecretManagerEmulator } from "../../local/secret-manager/emulator";
import { addSecretValue, defaultSecretNames, ensureSecrets } from "../../local/token-secrets";

export const projectId = "consumer-project";
export const accessSecret = `projects/${projectId}/secrets/${defaultSecretNames.access}`;
export const refreshSecret = `projects/${projectId}/secrets/${defaultSecretNames.refresh}`;

export interface ConsumerWorld {
    emulator: SecretManagerEmulator;
    sandbox: Bitrix24Sandbox;
    /** The test's own Secret Manager client (seeding only). */
    admin: SecretManagerServiceClient;
    /** The portal's REST base, as the token answer's client_endpoint gives it. */
    clientEndpoint: string;
    /** Every token the sandbox issued and the client secret: for expectNoSecrets. */
    secretValues(): string[];
    /**
     * Authorizes and stores the pair (refresh first); `annotate` publishes version and expiry on the
     * access secret. Clears the emulator's call log afterwards, so it holds the consumer's calls only.
     */
    authorize(annotate?: boolean): Promise<{ accessVersion: number; accessToken: string }>;
    /** Refreshes at the sandbox (revoking the old access token) and stores the new pair; `annotate` as above. */
    rotate(annotate?: boolean): Promise<{ accessVersion: number; accessToken: string }>;
    /** Refreshes at the sandbox and stores nothing: the stored access token is now dead. */
    revoke(): Promise<void>;
    /** Emulator calls that name the access-token secret (or its versions), by method. */
    accessCalls(method?: string): Array<{ method: string; name: string }>;
    stop(): Promise<void>;
}

export async function startConsumerWorld(sandboxOptions: SandboxOptions = {}): Promise<ConsumerWorld> {
    const emulator = await startSecretManagerEmulator();
    const sandbox = await startBitrix24Sandbox(sandboxOptions);
    const admin = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    await ensureSecrets(admin, projectId);
    let refreshToken: string | undefined;

    async function annotateAccess(version: number, expiresAtSec: number): Promise<void> {
        const [secret] = await admin.getSecret({ name: accessSecret });
        await admin.updateSecret({
            secret: {
                name: accessSecret,
                etag: secret.etag,
                annotations: {
                    ...(secret.annotations ?? {}),
                    [accessAnnotationKeys.version]: String(version),
                    [accessAnnotationKeys.expiresAt]: new Date(expiresAtSec * 1000).toISOString(),
                },
            },
            updateMask: { paths: ["annotations"] },
        });
    }

    async function store(pair: { accessToken: string; refreshToken: string; expires: number }, annotate: boolean) {
        refreshToken = pair.refreshToken;
        await addSecretValue(admin, projectId, defaultSecretNames.refresh, pair.refreshToken);
        const accessVersion = await addSecretValue(admin, projectId, defaultSecretNames.access, pair.accessToken);
        if (annotate) await annotateAccess(accessVersion, pair.expires);
        emulator.clearCalls(); // from here on, emulator.calls holds the consumer's calls only
        return { accessVersion, accessToken: pair.accessToken };
    }

    async function refreshAtSandbox(): Promise<{ accessToken: string; refreshToken: string; expires: number }> {
        if (!refreshToken) throw new Error("authorize first");
        const response = await fetch(sandbox.tokenUrl, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams({
                grant_type: "refresh_token",
                client_id: sandbox.clientId,
                client_secret: sandbox.clientSecret,
                refresh_token: refreshToken,
            }).toString(),
        });
        const body = (await response.json()) as { access_token: string; refresh_token: string; expires: number };
        return { accessToken: body.access_token, refreshToken: body.refresh_token, expires: body.expires };
    }

    return {
        emulator,
        sandbox,
        admin,
        clientEndpoint: `${sandbox.url}/rest/`,
        secretValues: () => [sandbox.clientSecret, ...sandbox.issuedTokens()],
        authorize: (annotate = true) => store(sandbox.authorize(), annotate),
        rotate: async (annotate = true) => store(await refreshAtSandbox(), annotate),
        revoke: async () => {
            refreshToken = (await refreshAtSandbox()).refreshToken;
        },
        accessCalls: (method) =>
            emulator.calls.filter((c) => c.name.startsWith(accessSecret) && (method === undefined || c.method === method)).map((c) => ({ method: c.method, name: c.name })),
        async stop() {
            await admin.close();
            await sandbox.stop();
            await emulator.stop();
        },
    };
}

/** The most requests that arrived within any window of `windowMs` (half-open). */
export function maxInWindow(times: number[], windowMs = 1000): number {
    const sorted = [...times].sort((a, b) => a - b);
    let best = 0;
    let start = 0;
    for (let end = 0; end < sorted.length; end++) {
        while (sorted[end]! - sorted[start]! >= windowMs) start++;
        best = Math.max(best, end - start + 1);
    }
    return best;
}

/** Captures what a client logs, as text lines, for the no-secret check. */
export function captureLog(): { lines: string[]; log: (event: object) => void; events: Array<Record<string, unknown>> } {
    const lines: string[] = [];
    const events: Array<Record<string, unknown>> = [];
    return {
        lines,
        events,
        log: (event) => {
            events.push(event as Record<string, unknown>);
            lines.push(JSON.stringify(event));
        },
    };
}
