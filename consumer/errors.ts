// The consumer client's typed errors. A message names the Bitrix24 method, the error code and,
// where a human must act, the fix. No error carries a token, a request body or the HTTP
// library's request options (which hold the token): only plain strings and numbers.

/** Why the access token could not be read from Secret Manager. */
export type AccessTokenErrorCode =
    | "not_authorized" // the secret has no enabled version: the app was never authorized
    | "secret_not_found" // the secret does not exist: wrong project or name, or the stack is not deployed
    | "permission_denied" // the caller's identity lacks the grant on the secret
    | "unavailable" // Secret Manager did not answer within the retry budget
    | "invalid"; // an empty or malformed version

export class AccessTokenError extends Error {
    constructor(
        readonly code: AccessTokenErrorCode,
        /** The secret id, e.g. `b24-access-token`. */
        readonly secret: string,
        message: string,
    ) {
        super(message);
        this.name = "AccessTokenError";
    }
}

/** A Bitrix24 REST call failed. `code` is Bitrix24's `error` value (or a transport code). */
export class Bitrix24Error extends Error {
    constructor(
        /** The REST method, e.g. `crm.deal.get`. */
        readonly method: string,
        /** Bitrix24's `error`, e.g. `NOT_FOUND`, `ACCESS_DENIED`; transport failures use lower-case codes. */
        readonly code: string,
        /** HTTP status, when an answer arrived. */
        readonly status: number | undefined,
        /** Bitrix24's `error_description`, scrubbed of token values. */
        readonly description: string | undefined,
        message?: string,
    ) {
        super(message ?? `Bitrix24 ${method} failed: ${code}${status === undefined ? "" : ` (HTTP ${status})`}${description ? `: ${description}` : ""}`);
        this.name = "Bitrix24Error";
    }
}

/**
 * The portal rejected the stored access token even after the client re-read the secret: the
 * refresher is not keeping the token fresh (or the app needs re-authorization).
 */
export class Bitrix24AuthError extends Bitrix24Error {
    constructor(method: string, code: string, status: number | undefined, description: string | undefined, readonly tokenVersion: number) {
        super(
            method,
            code,
            status,
            description,
            `Bitrix24 ${method} rejected the access token (${code}) and no newer token is stored than version ${tokenVersion} of the ` +
                "access-token secret: the refresher is not keeping it fresh. Run `npm run status -- --project <project>` in the " +
                "b24-token-rotation repository for the cause and the fix.",
        );
        this.name = "Bitrix24AuthError";
    }
}

/** QUERY_LIMIT_EXCEEDED (503) or OPERATION_TIME_LIMIT / HTTP 429 after every allowed retry. */
export class Bitrix24RateLimitError extends Bitrix24Error {
    constructor(method: string, code: string, status: number | undefined, description: string | undefined, readonly attempts: number) {
        super(
            method,
            code,
            status,
            description,
            `Bitrix24 ${method} is rate limited (${code}${status === undefined ? "" : `, HTTP ${status}`}) after ${attempts} attempts: ` +
                (code === "OPERATION_TIME_LIMIT" || status === 429
                    ? "the method used up its execution-time budget (480 s per 10 min) and is blocked for a while; make it cheaper (select fewer fields, start=-1) or slower."
                    : "the portal's request budget (2 per second after a burst of 50) is shared by every app and process; lower requestsPerSecond or spread the load."),
        );
        this.name = "Bitrix24RateLimitError";
    }
}

/**
 * No usable answer: a network failure, a timeout, a redirect or a non-JSON page (a gateway).
 * `sent` says whether the request may have reached the portal (and so may have been executed).
 */
export class Bitrix24TransportError extends Bitrix24Error {
    constructor(method: string, code: string, status: number | undefined, readonly sent: boolean) {
        super(
            method,
            code,
            status,
            undefined,
            `Bitrix24 ${method}: no usable answer (${code}${status === undefined ? "" : `, HTTP ${status}`})` +
                (sent ? "; the request may have reached the portal, so it was not retried." : "; the request never reached the portal."),
        );
        this.name = "Bitrix24TransportError";
    }
}
