// The OAuthClient port over HTTP with got. Thin: the answer is judged by core/token-response.
// A request that may have reached Bitrix24 is never retried (it may have consumed the refresh
// token); only failures before the request was sent are.
import got, { RequestError, TimeoutError } from "got";
import type { Clock, OAuthClient, OAuthResult } from "../core/ports";
import { parseTokenResponse } from "../core/token-response";
import type { Redactor } from "./redactor";

export interface Bitrix24OAuthClientOptions {
    tokenUrl: string;
    clientId: string;
    clientSecret: string;
    /** How long to wait for Bitrix24's answer once the request is sent. */
    responseTimeoutMs: number;
    clock: Clock;
    redactor: Redactor;
}

/** Errors that happen before a single byte of the request reaches the server. */
const notSentCodes = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL"];
const notSentTimeouts = ["lookup", "connect", "secureConnect"];

function wasNotSent(error: unknown): boolean {
    if (error instanceof TimeoutError) return notSentTimeouts.includes(error.event);
    return error instanceof RequestError && notSentCodes.includes(error.code);
}

export function createBitrix24OAuthClient(options: Bitrix24OAuthClientOptions): Required<OAuthClient> {
    const { tokenUrl, clientId, clientSecret, responseTimeoutMs, clock, redactor } = options;
    redactor.add(clientSecret);
    const client = got.extend({
        throwHttpErrors: false,
        followRedirect: false,
        responseType: "text",
        headers: { accept: "application/json", "user-agent": "b24-token-rotation" },
        timeout: { lookup: 5_000, connect: 5_000, secureConnect: 5_000, send: 10_000, response: responseTimeoutMs },
        retry: {
            limit: 2,
            methods: ["POST"],
            statusCodes: [],
            errorCodes: [...notSentCodes, "ETIMEDOUT"],
            calculateDelay: ({ error, computedValue }) => (wasNotSent(error) ? computedValue : 0),
        },
    });

    /** One POST to the token endpoint, judged by core/token-response. Never throws; never echoes the form. */
    async function post(form: Record<string, string>): Promise<OAuthResult> {
        try {
            const response = await client.post(tokenUrl, { form });
            const result = parseTokenResponse(
                response.statusCode,
                response.headers["content-type"],
                response.body,
                Math.floor(clock.now() / 1000),
            );
            if (result.ok) {
                redactor.add(result.tokens.accessToken);
                redactor.add(result.tokens.refreshToken);
            }
            return result;
        } catch (error) {
            // got's errors carry the request options (with the form body): only the code leaves here.
            const sent = !wasNotSent(error);
            if (error instanceof TimeoutError) {
                return { ok: false, failure: { code: "timeout", permanent: false, sent, detail: `no answer within the ${error.event} timeout` } };
            }
            const code = error instanceof RequestError ? error.code : "unknown";
            return { ok: false, failure: { code: "network", permanent: false, sent, detail: code } };
        }
    }

    return {
        async refresh(refreshToken: string): Promise<OAuthResult> {
            redactor.add(refreshToken);
            return post({ grant_type: "refresh_token", client_id: clientId, client_secret: clientSecret, refresh_token: refreshToken });
        },

        async exchangeCode(code: string): Promise<OAuthResult> {
            redactor.add(code);
            return post({ grant_type: "authorization_code", client_id: clientId, client_secret: clientSecret, code });
        },
    };
}

/** The client for a function's configuration (the refresher's and the callback's share these keys). */
export function oauthClientFor(
    config: { tokenUrl: string; clientId: string; clientSecret: string; oauthResponseTimeoutMs: number },
    clock: Clock,
    redactor: Redactor,
): Required<OAuthClient> {
    return createBitrix24OAuthClient({
        tokenUrl: config.tokenUrl,
        clientId: config.clientId,
        clientSecret: config.clientSecret,
        responseTimeoutMs: config.oauthResponseTimeoutMs,
        clock,
        redactor,
    });
}
