// Reads the access token the way the refresher writes it, and caches it until shortly before it
// expires. Never `versions/latest` (only eventually consistent: minutes after a refresh it can
// still hand back the token Bitrix24 just revoked): the version is found by number, from the
// `b24-access-version` annotation the refresher publishes on the access-token secret, or by
// listing the enabled versions. Only the access-token secret is ever named in a call.
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createBackoffSettings, createRetryOptions, grpc, type CallOptions } from "google-gax";
import { accessAnnotationKeys } from "../function/core/refresh-state";
import { AccessTokenError, type AccessTokenErrorCode } from "./errors";

/** Bitrix24 access tokens live one hour; used when the refresher recorded no expiry. */
export const accessTokenLifetimeMs = 3600_000;

export interface AccessToken {
    value: string;
    /** Version number of the access-token secret that holds it. */
    version: number;
    /** When Bitrix24 stops accepting it, ms. */
    expiresAt: number;
    /** `annotation`: recorded by the refresher; `create_time`: estimated as the version's creation + 1 h. */
    expirySource: "annotation" | "create_time";
}

/** What the source reports; never a token value. */
export type TokenSourceEvent =
    | { event: "token.read"; version: number; expiresAt: string; expirySource: AccessToken["expirySource"]; how: "annotation" | "list"; reason: ReadReason }
    | { event: "token.read_failed"; code: AccessTokenErrorCode; servedCachedVersion?: number };

export type ReadReason = "first_use" | "expiring" | "rejected";

export interface AccessTokenSourceOptions {
    client: SecretManagerServiceClient;
    projectId: string;
    /** Secret id of the access token, e.g. `b24-access-token`. */
    secret: string;
    /** Stop using a cached token this long before its expiry. */
    expirySkewMs: number;
    /** Cache at least this long, even a token that looks expired (so a dead refresher does not turn into a read storm). */
    minCacheMs: number;
    /** How long one Secret Manager call may spend retrying UNAVAILABLE and friends. */
    retryBudgetMs: number;
    /** Pause before the second look when a rejected token is still the newest stored. */
    reReadDelayMs: number;
    now: () => number;
    onEvent: (event: TokenSourceEvent) => void;
}

const retryableCodes = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL];

function positiveInt(value: string | undefined): number | undefined {
    if (value === undefined || !/^\d+$/.test(value)) return undefined;
    const n = Number(value);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function time(value: string | undefined): number | undefined {
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
}

function versionNumber(name: string | null | undefined): number | undefined {
    return positiveInt(/\/versions\/(\d+)$/.exec(name ?? "")?.[1]);
}

function timestampMs(ts: { seconds?: unknown; nanos?: unknown } | null | undefined): number | undefined {
    if (!ts) return undefined;
    const seconds = Number(ts.seconds ?? NaN);
    const nanos = Number(ts.nanos ?? 0);
    return Number.isFinite(seconds) ? seconds * 1000 + Math.floor(nanos / 1e6) : undefined;
}

interface Cached {
    token: AccessToken;
    /** Served from cache until then, ms. */
    until: number;
}

export class AccessTokenSource {
    private cached: Cached | undefined;
    private inflight: Promise<AccessToken> | undefined;
    /** The newest stored version was confirmed to be the rejected one at this time: no re-read storm. */
    private confirmedRejected: { version: number; at: number } | undefined;
    private readonly callOptions: CallOptions;
    private readonly secretName: string;

    constructor(private readonly options: AccessTokenSourceOptions) {
        const budget = options.retryBudgetMs;
        this.secretName = `projects/${options.projectId}/secrets/${options.secret}`;
        // Same policy as the refresher's store: bounded exponential backoff; every attempt gets the
        // remaining budget as its deadline (without one gax gives attempts a zero deadline).
        this.callOptions = {
            retry: createRetryOptions(
                retryableCodes,
                createBackoffSettings(Math.min(100, budget), 2, Math.max(100, budget / 4), budget, 1, budget, budget),
            ),
        };
    }

    /** The cached token, if any (for tests and diagnostics). */
    peek(): AccessToken | undefined {
        return this.cached?.token;
    }

    /** The current token: from the cache while it is fresh, else read by version number. */
    async get(): Promise<AccessToken> {
        const cached = this.cached;
        if (cached && this.options.now() < cached.until) return cached.token;
        return this.single(() => this.read("annotation", cached ? "expiring" : "first_use"));
    }

    /**
     * Called when the portal rejected `rejected`: re-reads the secret, bypassing the cache and the
     * annotation (which the refresher updates only after adding the version), and returns the newest
     * token. When that is still `rejected`, a refresh may be between revoking the old token and
     * storing the new one (a fraction of a second): one more look after `reReadDelayMs`. Returns
     * `rejected` itself when nothing newer is stored, and then, for `minCacheMs`, answers so
     * without reading again (a dead refresher must not turn every call into reads).
     */
    async replace(rejected: AccessToken): Promise<AccessToken> {
        const current = this.cached?.token;
        if (current && current.version !== rejected.version) return current; // someone already re-read
        if (this.recentlyConfirmedDead(rejected)) return rejected;
        if (this.inflight) {
            // A read is already under way (perhaps by annotation, which can lag): use it if it found a
            // newer token, or if it was another caller's re-read that confirmed nothing newer exists.
            const joined = await this.inflight.catch(() => undefined);
            if (joined && joined.version !== rejected.version) return joined;
            if (this.recentlyConfirmedDead(rejected)) return rejected;
        }
        return this.single(async () => {
            let token = await this.read("list", "rejected");
            if (token.version === rejected.version) {
                await new Promise((resolve) => setTimeout(resolve, this.options.reReadDelayMs));
                token = await this.read("list", "rejected");
            }
            if (token.version === rejected.version) this.confirmedRejected = { version: token.version, at: this.options.now() };
            return token;
        });
    }

    private recentlyConfirmedDead(token: AccessToken): boolean {
        const confirmed = this.confirmedRejected;
        return confirmed !== undefined && confirmed.version === token.version && this.options.now() - confirmed.at < this.options.minCacheMs;
    }

    /** One read at a time: concurrent callers share it. */
    private single(read: () => Promise<AccessToken>): Promise<AccessToken> {
        if (!this.inflight) {
            this.inflight = read().finally(() => {
                this.inflight = undefined;
            });
        }
        return this.inflight;
    }

    private async read(how: "annotation" | "list", reason: ReadReason): Promise<AccessToken> {
        let token: AccessToken;
        let found: "annotation" | "list";
        try {
            [token, found] = how === "annotation" ? await this.readByAnnotation() : [await this.readNewest(), "list"];
        } catch (error) {
            const failure = error instanceof AccessTokenError ? error : this.storeError(error);
            // Secret Manager is down but the cached token still works: keep serving it.
            const cached = this.cached?.token;
            if (failure.code === "unavailable" && cached && reason !== "rejected" && this.options.now() < cached.expiresAt) {
                this.options.onEvent({ event: "token.read_failed", code: failure.code, servedCachedVersion: cached.version });
                return cached;
            }
            this.options.onEvent({ event: "token.read_failed", code: failure.code });
            throw failure;
        }
        const now = this.options.now();
        this.cached = { token, until: Math.max(token.expiresAt - this.options.expirySkewMs, now + this.options.minCacheMs) };
        this.options.onEvent({
            event: "token.read",
            version: token.version,
            expiresAt: new Date(token.expiresAt).toISOString(),
            expirySource: token.expirySource,
            how: found,
            reason,
        });
        return token;
    }

    private async annotations(): Promise<{ version?: number; expiresAt?: number }> {
        const [secret] = await this.options.client.getSecret({ name: this.secretName }, this.callOptions);
        const annotations = secret.annotations ?? {};
        return {
            version: positiveInt(annotations[accessAnnotationKeys.version]),
            expiresAt: time(annotations[accessAnnotationKeys.expiresAt]),
        };
    }

    /** GetSecret → the annotated version → AccessSecretVersion by number; falls back to listing. */
    private async readByAnnotation(): Promise<[AccessToken, "annotation" | "list"]> {
        const annotated = await this.annotations();
        if (annotated.version === undefined || annotated.expiresAt === undefined) return [await this.readNewest(annotated), "list"];
        try {
            const value = await this.access(annotated.version);
            return [{ value, version: annotated.version, expiresAt: annotated.expiresAt, expirySource: "annotation" }, "annotation"];
        } catch (error) {
            const code = (error as { code?: number }).code;
            // The annotated version was disabled or destroyed meanwhile: find the newest by listing.
            if (code === grpc.status.FAILED_PRECONDITION || code === grpc.status.NOT_FOUND) return [await this.readNewest(), "list"];
            throw error;
        }
    }

    /** ListSecretVersions(state:ENABLED) → the highest number → AccessSecretVersion by number. */
    private async readNewest(known?: { version?: number; expiresAt?: number }): Promise<AccessToken> {
        const [annotated, [versions]] = await Promise.all([
            known ? Promise.resolve(known) : this.annotations(),
            this.options.client.listSecretVersions({ parent: this.secretName, filter: "state:ENABLED" }, this.callOptions),
        ]);
        const newest = versions
            .filter((v) => v.state === "ENABLED" || (v.state as unknown) === 1)
            .map((v) => ({ version: versionNumber(v.name), createdAt: timestampMs(v.createTime) }))
            .filter((v): v is { version: number; createdAt: number | undefined } => v.version !== undefined)
            .sort((a, b) => b.version - a.version)[0];
        if (!newest) {
            throw new AccessTokenError(
                "not_authorized",
                this.options.secret,
                `${this.options.secret} has no enabled version: the Bitrix24 app has not been authorized yet. ` +
                    "Run `npm run authorize -- --project <project>` in the b24-token-rotation repository.",
            );
        }
        const value = await this.access(newest.version);
        if (annotated.version === newest.version && annotated.expiresAt !== undefined) {
            return { value, version: newest.version, expiresAt: annotated.expiresAt, expirySource: "annotation" };
        }
        return {
            value,
            version: newest.version,
            expiresAt: (newest.createdAt ?? this.options.now()) + accessTokenLifetimeMs,
            expirySource: "create_time",
        };
    }

    private async access(version: number): Promise<string> {
        const [answer] = await this.options.client.accessSecretVersion({ name: `${this.secretName}/versions/${version}` }, this.callOptions);
        const data = answer.payload?.data;
        const value = data === null || data === undefined ? "" : typeof data === "string" ? data : Buffer.from(data).toString("utf8");
        if (!value.trim()) throw new AccessTokenError("invalid", this.options.secret, `${this.options.secret} version ${version} is empty`);
        return value.trim();
    }

    /** Maps a Secret Manager failure to a typed error. gRPC details never hold a payload. */
    private storeError(error: unknown): AccessTokenError {
        const secret = this.options.secret;
        const where = `${secret} in project ${this.options.projectId}`;
        const grpcCode = (error as { code?: number }).code;
        const details = String((error as { details?: string }).details ?? (error as Error)?.message ?? "").slice(0, 200);
        switch (grpcCode) {
            case grpc.status.NOT_FOUND:
                return new AccessTokenError("secret_not_found", secret, `${where} does not exist: check the project and secret name, or deploy the stack (\`pulumi up\`).`);
            case grpc.status.PERMISSION_DENIED:
            case grpc.status.UNAUTHENTICATED:
                return new AccessTokenError(
                    "permission_denied",
                    secret,
                    `Secret Manager refused access to ${where} (${grpc.status[grpcCode]}): grant this service's identity ` +
                        "roles/secretmanager.secretAccessor and roles/secretmanager.viewer on that secret (TokenRotation's grantAccessTokenReader).",
                );
            default:
                return new AccessTokenError(
                    "unavailable",
                    secret,
                    `Secret Manager did not answer for ${where} (${grpcCode === undefined ? "no status" : (grpc.status[grpcCode] ?? grpcCode)}): ${details}`.trim(),
                );
        }
    }
}
