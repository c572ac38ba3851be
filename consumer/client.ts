// The client other services import instead of reading `b24-access-token` themselves. It fixes
// the three bugs every hand-written reader has: it reads the newest version by number (not
// `latest`), it notices when a refresh revoked its cached token (one re-read, one retry), and it
// paces itself under the portal's rate limit (and backs off when the portal says so).
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import got, { RequestError, TimeoutError, type Got } from "got";
import { createSecretManagerClient } from "../function/adapters/secret-manager-store";
import { Bitrix24AuthError, Bitrix24Error, Bitrix24RateLimitError, Bitrix24TransportError } from "./errors";
import { Pacer, sharedPacer } from "./pacer";
import { classifyRestAnswer, parseRetryAfter, type Bitrix24Response } from "./rest-answer";
import { AccessTokenSource, type AccessToken, type TokenSourceEvent } from "./token-source";

export const consumerDefaults = {
    accessTokenSecret: "b24-access-token",
    requestsPerSecond: 2,
    burst: 1,
    rateLimitRetries: 5,
    connectRetries: 2,
    backoffInitialMs: 1000,
    backoffMaxMs: 16_000,
    timeoutMs: 30_000,
    expirySkewMs: 60_000,
    minCacheMs: 30_000,
    secretManagerRetryBudgetMs: 10_000,
    reReadDelayMs: 1000,
} as const;

/** What the client reports through `log`; never a token, a URL with a token, or call parameters. */
export type B24ClientEvent =
    | TokenSourceEvent
    | { event: "rest.token_rejected"; method: string; code: string; version: number }
    | { event: "rest.rate_limited"; method: string; code: string; status: number; attempt: number; delayMs: number };

export interface B24ClientOptions {
    /** Google Cloud project holding the secret. Default: `PROJECT_ID`, then `GOOGLE_CLOUD_PROJECT`. */
    projectId?: string;
    /**
     * The portal's REST base, the token answer's `client_endpoint`, e.g. `https://example.bitrix24.com/rest/`.
     * Default: `B24_CLIENT_ENDPOINT`, else `https://${portalDomain}/rest/`.
     */
    clientEndpoint?: string;
    /** The portal's host, e.g. `example.bitrix24.com`, when `clientEndpoint` is not given. Default: `B24_PORTAL_DOMAIN`. */
    portalDomain?: string;
    /** Secret id of the access token. Default: `ACCESS_TOKEN_SECRET`, else `b24-access-token`. */
    accessTokenSecret?: string;
    /** `host:port` of a Secret Manager emulator. Default: `SECRET_MANAGER_EMULATOR_HOST`. */
    emulatorHost?: string;
    /** Bring your own Secret Manager client (it is not closed by `close()`). */
    secretManagerClient?: SecretManagerServiceClient;
    /** Sustained REST requests per second from this process to this portal. Default 2 (Bitrix24's drain rate). */
    requestsPerSecond?: number;
    /** Back-to-back requests allowed after an idle spell. Default 1 (strict pacing). */
    burst?: number;
    /** Retries of one call answered QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT or HTTP 429. Default 5. */
    rateLimitRetries?: number;
    /** First back-off after a rate-limit answer (doubles per retry, with jitter). Default 1000 ms. */
    backoffInitialMs?: number;
    /** Longest back-off. Default 16000 ms. */
    backoffMaxMs?: number;
    /** Retries of a request that never reached the portal (connection refused, DNS failure). Default 2. */
    connectRetries?: number;
    /** How long to wait for the portal's answer. Default 30000 ms. */
    timeoutMs?: number;
    /** Stop using a cached token this long before its recorded expiry. Default 60000 ms. */
    expirySkewMs?: number;
    /** Pause before a second look at the secret when a rejected token is still the newest (a refresh mid-way). Default 1000 ms. */
    reReadDelayMs?: number;
    /** How long one Secret Manager call may spend retrying. Default 10000 ms. */
    secretManagerRetryBudgetMs?: number;
    /** Structured events (token reads, rejections, back-offs). Never receives a token. */
    log?: (event: B24ClientEvent) => void;
    /** Environment to read defaults from. Default `process.env`. */
    env?: Record<string, string | undefined>;
    /** Clock in ms. Default `Date.now`. */
    now?: () => number;
}

export interface B24Client {
    /** The current access token, read by version number and cached until shortly before it expires. */
    getAccessToken(): Promise<string>;
    /**
     * Calls a REST method, e.g. `call("crm.deal.get", { id: 42 })`, and returns Bitrix24's answer
     * (`result`, and `next`/`total` for list methods). Throws `Bitrix24Error` (or a subclass) or
     * `AccessTokenError`.
     */
    call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<Bitrix24Response<T>>;
    /** Closes the Secret Manager client the client created. */
    close(): Promise<void>;
}

/** Errors that happen before a byte of the request reached the portal: safe to retry for any method. */
const notSentCodes = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL"];
const notSentTimeouts = ["lookup", "connect", "secureConnect"];
const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);
const methodPattern = /^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$/;

function wasNotSent(error: unknown): boolean {
    if (error instanceof TimeoutError) return notSentTimeouts.includes(error.event);
    return error instanceof RequestError && notSentCodes.includes(error.code);
}

function positive(name: string, value: number, integer = false): number {
    if (!(Number.isFinite(value) && value >= 0) || (integer && !Number.isInteger(value))) {
        throw new RangeError(`${name} must be a ${integer ? "whole " : ""}number of at least 0, got ${value}`);
    }
    return value;
}

/** The REST base URL, checked: https (http only on loopback, for the sandbox), ending in `/`. */
export function resolveClientEndpoint(clientEndpoint: string | undefined, portalDomain: string | undefined): string {
    const raw = clientEndpoint?.trim() || (portalDomain?.trim() ? `https://${portalDomain.trim()}/rest/` : "");
    if (!raw) throw new RangeError("Set clientEndpoint (e.g. https://example.bitrix24.com/rest/) or portalDomain, or B24_CLIENT_ENDPOINT / B24_PORTAL_DOMAIN");
    let url: URL;
    try {
        url = new URL(raw);
    } catch {
        throw new RangeError(`clientEndpoint is not a URL: "${raw}"; expected e.g. https://example.bitrix24.com/rest/`);
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && loopbackHosts.has(url.hostname))) {
        throw new RangeError(`clientEndpoint must be https (the token travels in every request), got "${raw}"`);
    }
    if (url.search || url.hash || url.username || url.password) throw new RangeError(`clientEndpoint must be a plain base URL, got "${raw}"`);
    return url.toString().replace(/\/?$/, "/");
}

export function createB24Client(options: B24ClientOptions = {}): B24Client {
    const env = options.env ?? process.env;
    const now = options.now ?? Date.now;
    const log = options.log ?? (() => {});
    const projectId = (options.projectId ?? env.PROJECT_ID ?? env.GOOGLE_CLOUD_PROJECT ?? "").trim();
    if (!projectId) throw new RangeError("Set projectId (or PROJECT_ID / GOOGLE_CLOUD_PROJECT): the Google Cloud project that holds the access-token secret");
    const endpoint = resolveClientEndpoint(options.clientEndpoint ?? env.B24_CLIENT_ENDPOINT, options.portalDomain ?? env.B24_PORTAL_DOMAIN);
    const secret = (options.accessTokenSecret ?? env.ACCESS_TOKEN_SECRET ?? "").trim() || consumerDefaults.accessTokenSecret;
    const requestsPerSecond = options.requestsPerSecond ?? consumerDefaults.requestsPerSecond;
    const burst = options.burst ?? consumerDefaults.burst;
    const rateLimitRetries = positive("rateLimitRetries", options.rateLimitRetries ?? consumerDefaults.rateLimitRetries, true);
    const backoffInitialMs = positive("backoffInitialMs", options.backoffInitialMs ?? consumerDefaults.backoffInitialMs);
    const backoffMaxMs = positive("backoffMaxMs", options.backoffMaxMs ?? consumerDefaults.backoffMaxMs);
    const connectRetries = positive("connectRetries", options.connectRetries ?? consumerDefaults.connectRetries, true);
    const timeoutMs = positive("timeoutMs", options.timeoutMs ?? consumerDefaults.timeoutMs);
    const reReadDelayMs = positive("reReadDelayMs", options.reReadDelayMs ?? consumerDefaults.reReadDelayMs);
    const pacer: Pacer = sharedPacer(endpoint, { requestsPerSecond, burst });

    const ownsClient = !options.secretManagerClient;
    const emulatorHost = (options.emulatorHost ?? env.SECRET_MANAGER_EMULATOR_HOST ?? "").trim() || undefined;
    const secretManager = options.secretManagerClient ?? createSecretManagerClient({ projectId, ...(emulatorHost ? { emulatorHost } : {}) });
    const tokens = new AccessTokenSource({
        client: secretManager,
        projectId,
        secret,
        expirySkewMs: positive("expirySkewMs", options.expirySkewMs ?? consumerDefaults.expirySkewMs),
        minCacheMs: consumerDefaults.minCacheMs,
        retryBudgetMs: positive("secretManagerRetryBudgetMs", options.secretManagerRetryBudgetMs ?? consumerDefaults.secretManagerRetryBudgetMs),
        reReadDelayMs,
        now,
        onEvent: log,
    });

    const http: Got = got.extend({
        prefixUrl: endpoint,
        throwHttpErrors: false,
        followRedirect: false,
        responseType: "text",
        headers: { accept: "application/json", "user-agent": "b24-token-rotation-consumer" },
        timeout: { lookup: 5_000, connect: 5_000, secureConnect: 5_000, send: 10_000, response: timeoutMs },
        retry: {
            limit: connectRetries,
            methods: ["POST"],
            statusCodes: [],
            errorCodes: notSentCodes,
            // Only failures before the request left: a sent request may have been executed.
            calculateDelay: ({ error, computedValue }) => (wasNotSent(error) ? Math.min(computedValue, 1000) : 0),
        },
    });

    /** Replaces every occurrence of a token we hold in a text that came from outside. */
    const scrub = (text: string | undefined, token: AccessToken): string | undefined =>
        text === undefined ? undefined : text.split(token.value).join("[redacted]");

    async function send(method: string, params: Record<string, unknown>, token: AccessToken) {
        try {
            // The token travels in the JSON body, never in the URL (URLs end up in proxy logs).
            const response = await http.post(`${method}.json`, { json: { ...params, auth: token.value } });
            return { status: response.statusCode, body: response.body, retryAfterMs: parseRetryAfter(response.headers["retry-after"], now()) };
        } catch (error) {
            // got's errors carry the request options, body and token included: only codes leave here.
            const sent = !wasNotSent(error);
            const code = error instanceof TimeoutError ? `timeout_${error.event}` : error instanceof RequestError ? error.code || "network" : "network";
            throw new Bitrix24TransportError(method, code, undefined, sent);
        }
    }

    function backoff(attempt: number, retryAfterMs: number | undefined): number {
        const exponential = Math.min(backoffMaxMs, backoffInitialMs * 2 ** (attempt - 1));
        const jittered = exponential / 2 + Math.random() * (exponential / 2);
        return Math.min(backoffMaxMs, Math.max(jittered, retryAfterMs ?? 0));
    }

    return {
        async getAccessToken() {
            return (await tokens.get()).value;
        },

        async call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<Bitrix24Response<T>> {
            if (!methodPattern.test(method)) throw new RangeError(`not a Bitrix24 REST method name: "${method.slice(0, 80)}"`);
            let token = await tokens.get();
            let reRead = false;
            let rateLimited = 0;
            for (;;) {
                await pacer.acquire();
                const answer = await send(method, params, token);
                const outcome = classifyRestAnswer(answer);
                switch (outcome.kind) {
                    case "ok":
                        return outcome.body as Bitrix24Response<T>;
                    case "auth": {
                        const description = scrub(outcome.description, token);
                        if (reRead) throw new Bitrix24AuthError(method, outcome.code, outcome.status, description, token.version);
                        reRead = true;
                        log({ event: "rest.token_rejected", method, code: outcome.code, version: token.version });
                        const fresh = await tokens.replace(token);
                        if (fresh.version === token.version) throw new Bitrix24AuthError(method, outcome.code, outcome.status, description, token.version);
                        token = fresh;
                        continue;
                    }
                    case "rate_limited": {
                        if (rateLimited >= rateLimitRetries) {
                            throw new Bitrix24RateLimitError(method, outcome.code, outcome.status, scrub(outcome.description, token), rateLimited + 1);
                        }
                        rateLimited += 1;
                        const delayMs = backoff(rateLimited, outcome.retryAfterMs);
                        log({ event: "rest.rate_limited", method, code: outcome.code, status: outcome.status, attempt: rateLimited, delayMs: Math.round(delayMs) });
                        // The portal's bucket is full: hold every queued call of this process, not just this one.
                        pacer.holdFor(delayMs);
                        continue;
                    }
                    case "error":
                        throw new Bitrix24Error(method, outcome.code, outcome.status, scrub(outcome.description, token));
                    case "bad_answer":
                        throw new Bitrix24TransportError(method, outcome.code, outcome.status, true);
                }
            }
        },

        async close() {
            if (ownsClient) await secretManager.close();
        },
    };
}

