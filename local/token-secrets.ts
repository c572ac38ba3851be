// Creates the guide's four secrets in a Secret Manager (the emulator, for local runs and tests)
// and stores a token pair the way the refresher and `npm run authorize` expect.
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { grpc } from "google-gax";

export const defaultSecretNames = {
    clientId: "b24-client-id",
    clientSecret: "b24-client-secret",
    access: "b24-access-token",
    refresh: "b24-refresh-token",
} as const;

export type SecretNames = { [K in keyof typeof defaultSecretNames]: string };

export async function ensureSecrets(client: SecretManagerServiceClient, projectId: string, names: SecretNames = defaultSecretNames): Promise<void> {
    for (const secretId of Object.values(names)) {
        try {
            await client.createSecret({ parent: `projects/${projectId}`, secretId, secret: { replication: { automatic: {} } } });
        } catch (error) {
            if ((error as { code?: number }).code !== grpc.status.ALREADY_EXISTS) throw error;
        }
    }
}

export async function addSecretValue(client: SecretManagerServiceClient, projectId: string, secretId: string, value: string): Promise<number> {
    const [version] = await client.addSecretVersion({
        parent: `projects/${projectId}/secrets/${secretId}`,
        payload: { data: Buffer.from(value, "utf8") },
    });
    return Number(/\/versions\/(\d+)$/.exec(version.name ?? "")?.[1]);
}

/** Stores a pair as a first authorization does: refresh token first, then access token. */
export async function storeTokenPair(
    client: SecretManagerServiceClient,
    projectId: string,
    pair: { refreshToken: string; accessToken: string },
    names: SecretNames = defaultSecretNames,
): Promise<{ refreshVersion: number; accessVersion: number }> {
    const refreshVersion = await addSecretValue(client, projectId, names.refresh, pair.refreshToken);
    const accessVersion = await addSecretValue(client, projectId, names.access, pair.accessToken);
    return { refreshVersion, accessVersion };
}
