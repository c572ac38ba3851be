import { describe, expect, it } from "vitest";
import { parseTokenResponse } from "../../function/core/token-response";
import { expectNoSecrets } from "../helpers/no-secrets";

const now = 1_800_000_000;
const access = "b7c1f0e2a9d84c3fa1e6b2d94f0c7a5e00000000000000000000000000000001";
const refresh = "a4e9d2c7b1f04e8a9c3d6b2f1e0a7c5d00000000000000000000000000000002";
const success = {
    access_token: access,
    expires: now + 3600,
    expires_in: 3600,
    scope: "crm,user",
    domain: "oauth.bitrix.info",
    server_endpoint: "https://oauth.bitrix.info/rest/",
    status: "L",
    client_endpoint: "https://example.bitrix24.com/rest/",
    member_id: "0123456789abcdef0123456789abcdef",
    user_id: 1,
    refresh_token: refresh,
};

function parse(status: number, body: string, contentType = "application/json") {
    return parseTokenResponse(status, contentType, body, now);
}

describe("parseTokenResponse", () => {
    it("accepts the real success shape", () => {
        const result = parse(200, JSON.stringify(success));
        expect(result).toEqual({
            ok: true,
            tokens: {
                accessToken: access,
                refreshToken: refresh,
                expiresAt: now + 3600,
                scope: "crm,user",
                domain: "oauth.bitrix.info",
                serverEndpoint: "https://oauth.bitrix.info/rest/",
                clientEndpoint: "https://example.bitrix24.com/rest/",
                memberId: "0123456789abcdef0123456789abcdef",
            },
        });
    });

    it("derives the expiry from expires_in when expires is missing", () => {
        const { expires: _dropped, ...rest } = success;
        const result = parse(200, JSON.stringify(rest));
        expect(result.ok && result.tokens.expiresAt).toBe(now + 3600);
    });

    it("keeps the old refresh token when none is returned", () => {
        const { refresh_token: _dropped, ...rest } = success;
        const result = parse(200, JSON.stringify(rest));
        expect(result.ok && result.tokens.refreshToken).toBeUndefined();
    });

    it.each([
        [200, { error: "invalid_grant", error_description: "Invalid grant" }, "invalid_grant", true],
        [400, { error: "invalid_grant", error_description: "Invalid grant" }, "invalid_grant", true],
        [401, { error: "invalid_client", error_description: "Invalid client" }, "invalid_client", true],
        [200, { error: "wrong_client" }, "invalid_client", true],
        [401, { error: "expired_token" }, "expired_token", true],
        [402, { error: "PAYMENT_REQUIRED", error_description: "Payment required" }, "payment_required", true],
        [200, { error: "internal_error" }, "oauth_error", false],
        [503, { error: "temporarily_unavailable" }, "server_error", false],
        [429, { error: "too_many_requests" }, "rate_limited", false],
    ] as const)("HTTP %i with %j → %s (permanent: %s): the error field wins over the status", (status, body, code, permanent) => {
        const result = parse(status, JSON.stringify(body));
        expect(result).toMatchObject({ ok: false, failure: { code, permanent, sent: true, status } });
    });

    it.each([
        ["an HTML 502 page", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "server_error"],
        ["a 500 without body", 500, "", "text/plain", "server_error"],
        ["a 429 without body", 429, "", "text/plain", "rate_limited"],
        ["truncated JSON", 200, '{"access_token":"abc', "application/json", "bad_response"],
        ["an HTML page with 200", 200, "<html>maintenance</html>", "text/html", "bad_response"],
        ["a success without access_token", 200, JSON.stringify({ refresh_token: refresh }), "application/json", "bad_response"],
        ["an empty access_token", 200, JSON.stringify({ ...success, access_token: "" }), "application/json", "bad_response"],
        ["a non-string refresh_token", 200, JSON.stringify({ ...success, refresh_token: 42 }), "application/json", "bad_response"],
        ["a JSON array", 200, "[]", "application/json", "bad_response"],
        ["a redirect", 302, "", "text/html", "oauth_error"],
    ] as const)("%s is a transient %s", (_name, status, body, contentType, code) => {
        const result = parse(status, body, contentType);
        expect(result).toMatchObject({ ok: false, failure: { code, permanent: false, sent: true } });
    });

    it("never copies a token or a strange error value into the failure", () => {
        const hostile = [
            JSON.stringify({ error: `invalid ${access}`, refresh_token: refresh }),
            JSON.stringify({ refresh_token: refresh, access_token: 7 }),
            `<html>${access}</html>`,
            `{"access_token":"${access}`,
        ];
        const texts = hostile.map((body) => JSON.stringify(parse(200, body)));
        expectNoSecrets(texts, [access, refresh]);
    });
});
