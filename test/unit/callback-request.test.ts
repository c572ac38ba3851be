import { describe, expect, it } from "vitest";
import { classifyCallback, type CallbackHttpInput } from "../../function/core/callback-request";

const install = {
    event: "ONAPPINSTALL",
    "data[VERSION]": "1",
    "auth[access_token]": "a".repeat(70),
    "auth[refresh_token]": "b".repeat(70),
    "auth[application_token]": "c".repeat(32),
    "auth[domain]": "example.bitrix24.com",
    "auth[member_id]": "a223c6b3710f85df22e9377d6c4f7553",
    "auth[scope]": "crm,user",
    "auth[client_endpoint]": "https://example.bitrix24.com/rest/",
};

const form = (fields: Record<string, string>): CallbackHttpInput => ({
    method: "POST",
    query: new URLSearchParams(),
    contentType: "application/x-www-form-urlencoded; charset=utf-8",
    rawBody: Buffer.from(new URLSearchParams(fields).toString()),
});

const redirect = (fields: Record<string, string>): CallbackHttpInput => ({ method: "GET", query: new URLSearchParams(fields) });

const redirectFields = {
    code: "avmocpghblyi01m3h42bljvqtyd19sw1",
    state: "JJHgsdgfkdaslg7lbadsfg",
    domain: "example.bitrix24.com",
    member_id: "a223c6b3710f85df22e9377d6c4f7553",
    scope: "crm,user",
    server_domain: "oauth.bitrix.info",
};

describe("classifyCallback", () => {
    it("reads Bitrix24's OAuth redirect", () => {
        expect(classifyCallback(redirect(redirectFields))).toEqual({
            ok: true,
            request: {
                kind: "redirect",
                params: {
                    code: redirectFields.code,
                    state: redirectFields.state,
                    domain: "example.bitrix24.com",
                    memberId: redirectFields.member_id,
                    scope: "crm,user",
                    serverDomain: "oauth.bitrix.info",
                },
            },
        });
    });

    it("reads a form-encoded ONAPPINSTALL event", () => {
        expect(classifyCallback(form(install))).toEqual({
            ok: true,
            request: {
                kind: "install",
                event: {
                    accessToken: install["auth[access_token]"],
                    refreshToken: install["auth[refresh_token]"],
                    applicationToken: install["auth[application_token]"],
                    domain: "example.bitrix24.com",
                    memberId: install["auth[member_id]"],
                    scope: "crm,user",
                    clientEndpoint: "https://example.bitrix24.com/rest/",
                },
            },
        });
    });

    it("reads a JSON event, and the framework's parsed body when there is no raw one", () => {
        const auth = Object.fromEntries(Object.entries(install).filter(([k]) => k.startsWith("auth[")).map(([k, v]) => [k.slice(5, -1), v]));
        const json = { event: "onAppInstall", auth };
        const viaJson = classifyCallback({ method: "POST", query: new URLSearchParams(), contentType: "application/json", rawBody: Buffer.from(JSON.stringify(json)) });
        const viaParsed = classifyCallback({ method: "POST", query: new URLSearchParams(), parsedBody: json });
        expect(viaJson).toMatchObject({ ok: true, request: { kind: "install" } });
        expect(viaParsed).toEqual(viaJson);
    });

    it.each([
        ["PUT", { ...redirect(redirectFields), method: "PUT" }, 405, "method_not_allowed", undefined],
        ["a body over 64 KiB", form({ ...install, pad: "x".repeat(65 * 1024) }), 413, "body_too_large", undefined],
        ["XML", { ...form(install), contentType: "text/xml" }, 415, "unsupported_media_type", undefined],
        ["a redirect without state", redirect({ ...redirectFields, state: "" }), 400, "missing_fields", ["state"]],
        ["a redirect without code and member_id", redirect({ domain: "example.bitrix24.com", state: "s" }), 400, "missing_fields", ["code", "member_id"]],
        ["a denied authorization", redirect({ error: "access_denied" }), 400, "authorization_denied", undefined],
        ["a redirect with markup for a domain", redirect({ ...redirectFields, domain: "<script>x</script>" }), 400, "malformed_fields", ["domain"]],
        ["an event without auth[refresh_token]", form({ ...install, "auth[refresh_token]": "" }), 400, "missing_fields", ["auth[refresh_token]"]],
        ["an event with a token holding spaces", form({ ...install, "auth[access_token]": "a b c d e f g" }), 400, "malformed_fields", ["auth[access_token]"]],
        ["an event without a name", form({ ...install, event: "" }), 400, "missing_fields", ["event"]],
        ["ONAPPUNINSTALL", form({ ...install, event: "ONAPPUNINSTALL" }), 400, "unsupported_event", undefined],
        ["an empty POST", { method: "POST", query: new URLSearchParams() }, 400, "missing_fields", ["event"]],
        ["malformed JSON", { method: "POST", query: new URLSearchParams(), contentType: "application/json", rawBody: Buffer.from("{") }, 400, "missing_fields", ["event"]],
    ] as const)("refuses %s", (_name, input, status, code, fields) => {
        const result = classifyCallback(input as CallbackHttpInput);
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.refusal).toMatchObject({ status, code });
        if (fields) expect(result.refusal.fields).toEqual(fields);
        // A refusal names fields, never their values.
        expect(JSON.stringify(result.refusal)).not.toMatch(/aaaaaa|bbbbbb|cccccc|avmocp/);
    });
});
