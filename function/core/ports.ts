// The refresh algorithm's ports. Adapters implement them for Secret Manager, Bitrix24 and the
// functions framework; tests implement them with fakes. Nothing here knows about gRPC or HTTP.

export type TokenKind = "refresh" | "access";

export type VersionState = "ENABLED" | "DISABLED" | "DESTROYED";

export interface SecretVersionInfo {
    /** Version number, 1, 2, 3… in creation order. */
    version: number;
    state: VersionState;
}

/** The refresh-token secret's metadata: its etag guards every annotation write (compare-and-set). */
export interface SecretMeta {
    etag: string;
    annotations: Record<string, string>;
}

export type StoreErrorCode =
    | "unavailable" // network, UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL: retry later
    | "not_found" // a secret or version is missing: the deployment is incomplete
    | "permission_denied" // the runtime account lacks a role
    | "failed_precondition" // a version is disabled or destroyed
    | "invalid"; // the request was rejected as malformed

/** A Secret Manager failure, after the adapter's own retries. Its message never holds a payload. */
export class StoreError extends Error {
    constructor(
        readonly code: StoreErrorCode,
        readonly operation: string,
        message: string,
    ) {
        super(message);
        this.name = "StoreError";
    }
}

export interface TokenStore {
    /** Reads the refresh-token secret's etag and annotations (lease and refresh state live there). */
    readMeta(): Promise<SecretMeta>;
    /** Replaces the annotations if `etag` is still current. Returns the new etag, or null when it was stale. */
    writeMeta(etag: string, annotations: Record<string, string>): Promise<string | null>;
    /** Enabled versions of a token secret, newest first. */
    listEnabledVersions(kind: TokenKind): Promise<SecretVersionInfo[]>;
    /** Reads one version by number (strongly consistent, unlike `latest`). */
    readVersion(kind: TokenKind, version: number): Promise<string>;
    /** Adds a version and returns its number. */
    addVersion(kind: TokenKind, value: string): Promise<number>;
    destroyVersion(kind: TokenKind, version: number): Promise<void>;
    /**
     * Publishes which access-token version is current and when it expires, as annotations on the
     * access-token secret, for consumers that may not read the refresh-token secret.
     */
    describeAccessToken(version: number, expiresAtMs: number): Promise<void>;
}

/** A token pair as Bitrix24 returned it, validated. */
export interface IssuedTokens {
    accessToken: string;
    /** Absent when Bitrix24 did not return one: the old refresh token stays valid. */
    refreshToken?: string;
    /** Unix seconds when the access token expires. */
    expiresAt: number;
    scope?: string;
    memberId?: string;
    clientEndpoint?: string;
    serverEndpoint?: string;
    domain?: string;
}

export type OAuthFailureCode =
    | "invalid_grant" // the refresh token (or code) is dead
    | "expired_token" // the refresh token expired
    | "invalid_client" // wrong client id or secret (also `wrong_client`)
    | "payment_required" // the portal's plan does not allow the app
    | "oauth_error" // another `error` value from Bitrix24
    | "rate_limited" // HTTP 429
    | "server_error" // HTTP 5xx or an HTML gateway page
    | "bad_response" // unparseable JSON or a success without tokens
    | "timeout" // no answer in time after the request was sent
    | "network"; // connection failed

export interface OAuthFailure {
    code: OAuthFailureCode;
    /** Needs a human (re-authorization or new credentials); retrying cannot help. */
    permanent: boolean;
    /** The request reached Bitrix24, so the refresh token may already be consumed. */
    sent: boolean;
    /** HTTP status, when there was an answer. */
    status?: number;
    /** Bitrix24's `error` value or a short safe description; never a token. */
    detail?: string;
}

export type OAuthResult = { ok: true; tokens: IssuedTokens } | { ok: false; failure: OAuthFailure };

export interface OAuthClient {
    refresh(refreshToken: string): Promise<OAuthResult>;
    /** `grant_type=authorization_code`: a first authorization. Optional: the refresher never needs it. */
    exchangeCode?(code: string): Promise<OAuthResult>;
}

export interface Clock {
    /** Milliseconds since the epoch. */
    now(): number;
}

export type Severity = "DEBUG" | "INFO" | "NOTICE" | "WARNING" | "ERROR" | "CRITICAL";

/** Stable event names: alerting and log-based metrics filter on them. */
export type LogEvent =
    | "refresh.succeeded"
    | "refresh.skipped"
    | "refresh.failed"
    | "refresh.reauthorization_needed"
    | "refresh.warning"
    | "authorize.stored" // a first authorization (CLI, OAuth redirect or install event) stored a pair
    | "authorize.refused" // a callback request was refused (another portal, bad state, malformed)
    | "authorize.failed"; // a genuine authorization could not be completed (Bitrix24 or Secret Manager failed)

export interface LogEntry {
    severity: Severity;
    message: string;
    event?: LogEvent;
    [field: string]: unknown;
}

export interface Log {
    write(entry: LogEntry): void;
}
