// What `npm run status` reads: each secret's annotations and its versions' numbers, states and
// creation times. Metadata only: no payload is ever requested, so no token can reach the output.
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createBackoffSettings, createRetryOptions, grpc, type CallOptions } from "google-gax";

export type VersionState = "ENABLED" | "DISABLED" | "DESTROYED";

export interface VersionInfo {
    number: number;
    state: VersionState;
    /** ms */
    createdAt?: number;
}

export interface SecretSnapshot {
    /** Secret id, e.g. `b24-access-token`. */
    id: string;
    exists: boolean;
    annotations: Record<string, string>;
    /** Newest first. */
    versions: VersionInfo[];
}

export type SecretRole = "clientId" | "clientSecret" | "access" | "refresh";

export interface Snapshot {
    projectId: string;
    secrets: Record<SecretRole, SecretSnapshot>;
}

/** The guide's four secret ids under a portal's prefix (`b24` gives `b24-access-token` …). */
export function statusSecretNames(prefix: string): Record<SecretRole, string> {
    return {
        clientId: `${prefix}-client-id`,
        clientSecret: `${prefix}-client-secret`,
        access: `${prefix}-access-token`,
        refresh: `${prefix}-refresh-token`,
    };
}

export type SnapshotErrorCode = "unreachable" | "no_credentials" | "permission_denied";

/** Secret Manager could not be read at all. */
export class SnapshotError extends Error {
    constructor(
        readonly code: SnapshotErrorCode,
        message: string,
    ) {
        super(message);
        this.name = "SnapshotError";
    }
}

const retryableCodes = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL];

function versionState(state: unknown): VersionState {
    return state === "ENABLED" || state === 1 ? "ENABLED" : state === "DISABLED" || state === 2 ? "DISABLED" : "DESTROYED";
}

function timestampMs(ts: { seconds?: unknown; nanos?: unknown } | null | undefined): number | undefined {
    if (!ts) return undefined;
    const seconds = Number(ts.seconds ?? NaN);
    return Number.isFinite(seconds) ? seconds * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6) : undefined;
}

function snapshotError(error: unknown, projectId: string, where: string, timeoutMs: number): SnapshotError {
    const code = (error as { code?: number }).code;
    const text = String((error as { details?: string }).details || (error as Error)?.message || error).slice(0, 300);
    if (code === grpc.status.PERMISSION_DENIED || code === grpc.status.UNAUTHENTICATED) {
        return new SnapshotError(
            "permission_denied",
            `Secret Manager refused to show ${where} in project ${projectId} (${grpc.status[code]}). ` +
                "You need roles/secretmanager.viewer on the project (or on the four secrets).",
        );
    }
    if (code === undefined && /default credentials|could not load the default|invalid_grant|reauth/i.test(text)) {
        return new SnapshotError(
            "no_credentials",
            `No usable application-default credentials (${text}). Run \`gcloud auth application-default login\`, or set SECRET_MANAGER_EMULATOR_HOST for the emulator.`,
        );
    }
    const reason = /ECONNREFUSED/.test(text)
        ? "connection refused"
        : /ENOTFOUND|EAI_AGAIN/.test(text)
          ? "host not found"
          : code === undefined
            ? text
            : `${grpc.status[code] ?? code}${/No connection established/.test(text) ? ", no connection" : ""}`;
    return new SnapshotError("unreachable", `Secret Manager did not answer for project ${projectId} within ${timeoutMs / 1000} s (${reason}).`);
}

export async function readSnapshot(
    client: SecretManagerServiceClient,
    options: { projectId: string; names: Record<SecretRole, string>; timeoutMs: number },
): Promise<Snapshot> {
    const { projectId, names, timeoutMs } = options;
    const callOptions: CallOptions = {
        retry: createRetryOptions(
            retryableCodes,
            createBackoffSettings(Math.min(100, timeoutMs), 2, Math.max(100, timeoutMs / 4), timeoutMs, 1, timeoutMs, timeoutMs),
        ),
    };

    async function one(id: string): Promise<SecretSnapshot> {
        const name = `projects/${projectId}/secrets/${id}`;
        try {
            const [[secret], [versions]] = await Promise.all([
                client.getSecret({ name }, callOptions),
                client.listSecretVersions({ parent: name }, callOptions),
            ]);
            return {
                id,
                exists: true,
                annotations: { ...(secret.annotations ?? {}) },
                versions: versions
                    .map((v) => ({
                        number: Number(/\/versions\/(\d+)$/.exec(v.name ?? "")?.[1] ?? NaN),
                        state: versionState(v.state),
                        createdAt: timestampMs(v.createTime),
                    }))
                    .filter((v) => Number.isSafeInteger(v.number) && v.number > 0)
                    .map((v) => (v.createdAt === undefined ? { number: v.number, state: v.state } : { number: v.number, state: v.state, createdAt: v.createdAt }))
                    .sort((a, b) => b.number - a.number),
            };
        } catch (error) {
            if ((error as { code?: number }).code === grpc.status.NOT_FOUND) return { id, exists: false, annotations: {}, versions: [] };
            throw snapshotError(error, projectId, `secret ${id}`, timeoutMs);
        }
    }

    const roles = Object.keys(names) as SecretRole[];
    const read = await Promise.all(roles.map((role) => one(names[role])));
    const secrets = Object.fromEntries(roles.map((role, i) => [role, read[i]!])) as Record<SecretRole, SecretSnapshot>;
    return { projectId, secrets };
}
