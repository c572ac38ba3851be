// How one Bitrix24 REST answer is judged, as data: success, a rejected token, a rate limit, a
// Bitrix24 error, or no usable answer. Pure, so every shape is tested without a server.

/** A REST answer's body: `result` plus, for list methods, `next` and `total`, and the `time` block. */
export interface Bitrix24Response<T = unknown> {
    result: T;
    next?: number;
    total?: number;
    time?: Record<string, unknown>;
    [key: string]: unknown;
}

export type RestOutcome =
    | { kind: "ok"; body: Bitrix24Response }
    /** The token was rejected: re-read the secret once and retry. */
    | { kind: "auth"; code: string; status: number; description?: string }
    /** The portal is throttling: back off and retry. */
    | { kind: "rate_limited"; code: string; status: number; description?: string; retryAfterMs?: number }
    /** A Bitrix24 error about the call itself (bad parameters, no access, not found …): never retried. */
    | { kind: "error"; code: string; status: number; description?: string }
    /** Not a Bitrix24 answer at all (HTML gateway page, redirect, empty body). */
    | { kind: "bad_answer"; code: string; status: number };

/** `error` values that mean "this access token is not (or no longer) valid" [DOC error-codes]. */
export const tokenRejectedCodes: ReadonlySet<string> = new Set(["expired_token", "invalid_token", "no_auth_found"]);

/** `error` values of the two limits [DOC limits]: request intensity (503) and method execution time (429). */
export const rateLimitCodes: ReadonlySet<string> = new Set(["query_limit_exceeded", "operation_time_limit"]);

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
    const text = Array.isArray(value) ? value[0] : value;
    if (!text) return undefined;
    if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
    const at = Date.parse(text);
    return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function parseJson(text: string): unknown {
    try {
        return JSON.parse(text) as unknown;
    } catch {
        return undefined;
    }
}

export function classifyRestAnswer(answer: { status: number; body: string; retryAfterMs?: number }): RestOutcome {
    const { status } = answer;
    const parsed = parseJson(answer.body);
    const object = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    const error = object && typeof object.error === "string" && object.error !== "" ? object.error : undefined;
    if (error !== undefined) {
        // The `error` field decides whatever the status says (Bitrix24 also answers errors with 200).
        const description = typeof object?.error_description === "string" ? object.error_description : undefined;
        const key = error.toLowerCase();
        const base = { code: error, status, ...(description === undefined ? {} : { description }) };
        if (tokenRejectedCodes.has(key)) return { kind: "auth", ...base };
        if (rateLimitCodes.has(key) || status === 429) {
            return { kind: "rate_limited", ...base, ...(answer.retryAfterMs === undefined ? {} : { retryAfterMs: answer.retryAfterMs }) };
        }
        return { kind: "error", ...base };
    }
    if (status === 429) {
        return { kind: "rate_limited", code: "HTTP_429", status, ...(answer.retryAfterMs === undefined ? {} : { retryAfterMs: answer.retryAfterMs }) };
    }
    if (object && "result" in object && status >= 200 && status < 300) return { kind: "ok", body: object as Bitrix24Response };
    if (status >= 300) return { kind: "bad_answer", code: `http_${status}`, status };
    return { kind: "bad_answer", code: "bad_response", status };
}
