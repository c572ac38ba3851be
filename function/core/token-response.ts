// Turns whatever the Bitrix24 token endpoint answered into a validated token pair or a classified
// failure. Pure, so every shape (JSON errors with any status, HTML gateway pages, broken JSON) is
// tested directly. Nothing it returns contains a token from the body.
import type { IssuedTokens, OAuthFailure, OAuthFailureCode, OAuthResult } from "./ports";

/** Bitrix24 `error` values that no retry can fix. `wrong_client` is an alias of `invalid_client`. */
const permanentErrors: Record<string, OAuthFailureCode> = {
    invalid_grant: "invalid_grant",
    expired_token: "expired_token",
    invalid_client: "invalid_client",
    wrong_client: "invalid_client",
    payment_required: "payment_required",
};

const safeErrorValue = /^[A-Za-z0-9_.-]{1,64}$/;

function nonEmptyString(value: unknown): value is string {
    return typeof value === "string" && value.trim().length > 0;
}

function failure(code: OAuthFailureCode, status: number, detail?: string, permanent = false): OAuthResult {
    const f: OAuthFailure = { code, permanent, sent: true, status };
    if (detail) f.detail = detail;
    return { ok: false, failure: f };
}

/**
 * @param nowSeconds used when the answer has `expires_in` but no absolute `expires`.
 */
export function parseTokenResponse(status: number, contentType: string | undefined, body: string, nowSeconds: number): OAuthResult {
    let json: unknown;
    try {
        json = JSON.parse(body);
    } catch {
        json = undefined;
    }
    const record = json !== null && typeof json === "object" && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;

    // An `error` field wins over the status code: Bitrix24 sends errors with 200, 400 and 401 alike.
    if (record && record.error !== undefined) {
        const raw = String(record.error);
        const value = safeErrorValue.test(raw) ? raw : "unrecognised";
        const permanent = permanentErrors[value.toLowerCase()];
        if (permanent) return failure(permanent, status, value, true);
        if (status === 429) return failure("rate_limited", status, value);
        if (status >= 500) return failure("server_error", status, value);
        return failure("oauth_error", status, value);
    }
    if (status === 429) return failure("rate_limited", status);
    if (status >= 500) {
        const html = (contentType ?? "").includes("html") || /^\s*</.test(body);
        return failure("server_error", status, html ? "HTML error page" : undefined);
    }
    if (status < 200 || status >= 300) return failure("oauth_error", status, "unexpected HTTP status");
    if (!record) return failure("bad_response", status, /^\s*</.test(body) ? "HTML instead of JSON" : "malformed JSON");
    if (!nonEmptyString(record.access_token)) return failure("bad_response", status, "no access_token in the answer");
    if (record.refresh_token !== undefined && record.refresh_token !== null && !nonEmptyString(record.refresh_token)) {
        return failure("bad_response", status, "refresh_token is not a non-empty string");
    }

    const expires = Number(record.expires);
    const expiresIn = Number(record.expires_in);
    let expiresAt: number;
    if (Number.isFinite(expires) && expires > nowSeconds - 3600 * 24) expiresAt = Math.floor(expires);
    else if (Number.isFinite(expiresIn) && expiresIn > 0) expiresAt = Math.floor(nowSeconds + expiresIn);
    else expiresAt = Math.floor(nowSeconds + 3600); // Bitrix24 access tokens live one hour

    const tokens: IssuedTokens = { accessToken: record.access_token, expiresAt };
    if (nonEmptyString(record.refresh_token)) tokens.refreshToken = record.refresh_token;
    for (const [field, key] of [
        ["scope", "scope"],
        ["member_id", "memberId"],
        ["client_endpoint", "clientEndpoint"],
        ["server_endpoint", "serverEndpoint"],
        ["domain", "domain"],
    ] as const) {
        if (nonEmptyString(record[field])) tokens[key] = record[field];
    }
    return { ok: true, tokens };
}
