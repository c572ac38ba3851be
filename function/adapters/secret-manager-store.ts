// The TokenStore port over Secret Manager's gRPC API with the official client. Thin: names,
// retries and error mapping only. Payloads are the bare token strings, as in the original guide.
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createBackoffSettings, createRetryOptions, grpc, type CallOptions } from "google-gax";
import type { SecretMeta, SecretVersionInfo, TokenKind, TokenStore, VersionState } from "../core/ports";
import { StoreError, type StoreErrorCode } from "../core/ports";
import { accessAnnotationKeys } from "../core/refresh-state";
import type { Redactor } from "./redactor";

export interface SecretManagerClientOptions {
    projectId: string;
    /** `host:port` of an emulator: plaintext gRPC, no credential lookup (like PUBSUB_EMULATOR_HOST). */
    emulatorHost?: string;
}

export function createSecretManagerClient(options: SecretManagerClientOptions): SecretManagerServiceClient {
    if (!options.emulatorHost) return new SecretManagerServiceClient({ projectId: options.projectId });
    const match = /^(.+):(\d+)$/.exec(options.emulatorHost);
    if (!match) throw new RangeError(`SECRET_MANAGER_EMULATOR_HOST must be host:port, got "${options.emulatorHost}"`);
    return new SecretManagerServiceClient({
        apiEndpoint: match[1],
        port: Number(match[2]),
        sslCreds: grpc.credentials.createInsecure(),
        projectId: options.projectId,
        // Without an explicit universe domain, gax asks google-auth-library for one, which probes the
        // GCE metadata server (169.254.169.254) even though plaintext channels need no credentials.
        universeDomain: "googleapis.com",
    });
}

export interface SecretManagerTokenStoreOptions {
    client: SecretManagerServiceClient;
    projectId: string;
    secrets: Record<TokenKind, string>;
    /** Total time one call may spend retrying UNAVAILABLE and friends, in ms. */
    retryBudgetMs: number;
    redactor: Redactor;
}

const retryableCodes = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL];

function storeErrorCode(grpcCode: number | undefined): StoreErrorCode {
    switch (grpcCode) {
        case grpc.status.NOT_FOUND:
            return "not_found";
        case grpc.status.PERMISSION_DENIED:
        case grpc.status.UNAUTHENTICATED:
            return "permission_denied";
        case grpc.status.FAILED_PRECONDITION:
            return "failed_precondition";
        case grpc.status.INVALID_ARGUMENT:
            return "invalid";
        default:
            return "unavailable";
    }
}

function versionState(state: unknown): VersionState {
    return state === "ENABLED" || state === 1 ? "ENABLED" : state === "DISABLED" || state === 2 ? "DISABLED" : "DESTROYED";
}

function versionNumber(name: string | null | undefined): number {
    const n = Number(/\/versions\/(\d+)$/.exec(name ?? "")?.[1]);
    if (!Number.isSafeInteger(n) || n < 1) throw new StoreError("invalid", "parse", `unexpected version name "${name}"`);
    return n;
}

export function createSecretManagerTokenStore(options: SecretManagerTokenStoreOptions): TokenStore {
    const { client, projectId, secrets, retryBudgetMs, redactor } = options;
    const secretName = (kind: TokenKind) => `projects/${projectId}/secrets/${secrets[kind]}`;
    // The client retries only some reads by default and never AddSecretVersion; every call here
    // gets the same bounded exponential backoff (a duplicate version from a lost answer is harmless).
    // Each attempt gets the whole budget as its deadline (gax trims it to what is left); without
    // one, gax gives attempts a zero deadline and "retries" calls that had in fact succeeded.
    const callOptions: CallOptions = {
        retry: createRetryOptions(
            retryableCodes,
            createBackoffSettings(Math.min(200, retryBudgetMs), 2, Math.max(200, retryBudgetMs / 4), retryBudgetMs, 1, retryBudgetMs, retryBudgetMs),
        ),
    };

    async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
        try {
            return await run();
        } catch (error) {
            const grpcCode = (error as { code?: number }).code;
            const details = redactor.scrub(String((error as { details?: string }).details ?? (error as Error).message ?? "")).slice(0, 300);
            throw new StoreError(storeErrorCode(grpcCode), operation, `${grpc.status[grpcCode ?? -1] ?? "ERROR"} ${details}`.trim());
        }
    }

    return {
        async readMeta(): Promise<SecretMeta> {
            const [secret] = await call("GetSecret", () => client.getSecret({ name: secretName("refresh") }, callOptions));
            return { etag: secret.etag ?? "", annotations: { ...(secret.annotations ?? {}) } };
        },

        async writeMeta(etag, annotations) {
            try {
                const [secret] = await call("UpdateSecret", () =>
                    client.updateSecret(
                        { secret: { name: secretName("refresh"), etag, annotations }, updateMask: { paths: ["annotations"] } },
                        callOptions,
                    ),
                );
                return secret.etag ?? "";
            } catch (error) {
                // A stale etag is the compare-and-set saying "someone else wrote first".
                if (error instanceof StoreError && error.code === "failed_precondition") return null;
                throw error;
            }
        },

        async listEnabledVersions(kind): Promise<SecretVersionInfo[]> {
            const [versions] = await call("ListSecretVersions", () =>
                client.listSecretVersions({ parent: secretName(kind), filter: "state:ENABLED" }, callOptions),
            );
            return versions
                .map((v) => ({ version: versionNumber(v.name), state: versionState(v.state) }))
                .filter((v) => v.state === "ENABLED")
                .sort((a, b) => b.version - a.version);
        },

        async readVersion(kind, version) {
            const [answer] = await call("AccessSecretVersion", () =>
                client.accessSecretVersion({ name: `${secretName(kind)}/versions/${version}` }, callOptions),
            );
            const data = answer.payload?.data;
            const value = data === null || data === undefined ? "" : typeof data === "string" ? data : Buffer.from(data).toString("utf8");
            redactor.add(value);
            if (!value) throw new StoreError("invalid", "AccessSecretVersion", `${secrets[kind]} version ${version} is empty`);
            return value;
        },

        async addVersion(kind, value) {
            redactor.add(value);
            const [version] = await call("AddSecretVersion", () =>
                client.addSecretVersion({ parent: secretName(kind), payload: { data: Buffer.from(value, "utf8") } }, callOptions),
            );
            return versionNumber(version.name);
        },

        async describeAccessToken(version, expiresAtMs) {
            const [secret] = await call("GetSecret", () => client.getSecret({ name: secretName("access") }, callOptions));
            const annotations = {
                ...(secret.annotations ?? {}),
                [accessAnnotationKeys.version]: String(version),
                [accessAnnotationKeys.expiresAt]: new Date(expiresAtMs).toISOString(),
            };
            await call("UpdateSecret", () =>
                client.updateSecret({ secret: { name: secretName("access"), etag: secret.etag, annotations }, updateMask: { paths: ["annotations"] } }, callOptions),
            );
        },

        async destroyVersion(kind, version) {
            await call("DestroySecretVersion", () =>
                client.destroySecretVersion({ name: `${secretName(kind)}/versions/${version}` }, callOptions),
            );
        },
    };
}

export interface TokenStoreSettings {
    projectId: string;
    emulatorHost?: string;
    secrets: Record<TokenKind, string>;
    storeRetryBudgetMs: number;
}

/**
 * Builds a TokenStore per invocation over one client per instance: gRPC channels are expensive,
 * invocations are not. The client is rebuilt only if the project or emulator changes.
 */
export function createTokenStoreFactory(): (settings: TokenStoreSettings, redactor: Redactor) => TokenStore {
    let cached: { key: string; client: SecretManagerServiceClient } | undefined;
    return (settings, redactor) => {
        const key = `${settings.projectId}|${settings.emulatorHost ?? ""}`;
        if (!cached || cached.key !== key) {
            cached = { key, client: createSecretManagerClient({ projectId: settings.projectId, emulatorHost: settings.emulatorHost }) };
        }
        return createSecretManagerTokenStore({
            client: cached.client,
            projectId: settings.projectId,
            secrets: settings.secrets,
            retryBudgetMs: settings.storeRetryBudgetMs,
            redactor,
        });
    };
}
