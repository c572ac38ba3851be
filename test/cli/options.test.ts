// The CLI's pure parts: options, help text, the authorize address, and what a paste can look like.
import { describe, expect, it } from "vitest";
import { authorizeUrl, parseOptions, usage } from "../../cli/options";
import { parsePastedRedirect } from "../../cli/redirect-input";

const base = ["--project", "my-project", "--portal", "example.bitrix24.com"];

describe("parseOptions", () => {
    it("defaults to the stack's secret names, the west token endpoint and paste mode", () => {
        const parsed = parseOptions(base, {});
        expect(parsed).toEqual({
            kind: "run",
            options: {
                projectId: "my-project",
                portalDomain: "example.bitrix24.com",
                tokenUrl: "https://oauth.bitrix.info/oauth/token/",
                secrets: { clientId: "b24-client-id", clientSecret: "b24-client-secret", access: "b24-access-token", refresh: "b24-refresh-token" },
                force: false,
                timeoutMs: 300_000,
                printCallbackUrl: false,
                storeRetryBudgetMs: 15_000,
            },
        });
    });

    it("takes the environment when flags are absent, flags first", () => {
        const env = {
            PROJECT_ID: "env-project",
            B24_PORTAL_DOMAIN: "https://Env.Bitrix24.com/",
            B24_CLIENT_ID: "local.env.1",
            B24_CLIENT_SECRET: "env-secret-value",
            B24_OAUTH_TOKEN_URL: "https://oauth.bitrix24.tech/oauth/token/",
            B24_MEMBER_ID: "abc123",
            REFRESH_TOKEN_SECRET: "env-refresh",
            SECRET_MANAGER_EMULATOR_HOST: "127.0.0.1:8085",
            STORE_RETRY_BUDGET_SECONDS: "3",
        };
        const parsed = parseOptions(["--project", "flag-project"], env);
        expect(parsed).toMatchObject({
            kind: "run",
            options: {
                projectId: "flag-project",
                portalDomain: "env.bitrix24.com",
                clientId: "local.env.1",
                clientSecret: "env-secret-value",
                memberId: "abc123",
                tokenUrl: "https://oauth.bitrix24.tech/oauth/token/",
                secrets: { refresh: "env-refresh", access: "b24-access-token" },
                emulatorHost: "127.0.0.1:8085",
                storeRetryBudgetMs: 3000,
            },
        });
    });

    it("derives the secret names from --prefix, per-secret flags win", () => {
        const parsed = parseOptions([...base, "--prefix", "shop", "--access-token-secret", "shop-at"], {});
        expect(parsed).toMatchObject({
            options: { secrets: { clientId: "shop-client-id", clientSecret: "shop-client-secret", access: "shop-at", refresh: "shop-refresh-token" } },
        });
    });

    it.each([
        ["http://localhost:8765/oauth", { port: 8765, path: "/oauth" }],
        ["http://127.0.0.1:9000/", { port: 9000, path: "/" }],
        ["http://localhost:8765/oauth/", { port: 8765, path: "/oauth" }],
        ["https://localhost/oauth", undefined],
        ["https://example.com/b24/callback", undefined],
    ])("--redirect-uri %s → loopback %j", (uri, loopback) => {
        const parsed = parseOptions([...base, "--redirect-uri", uri], {});
        expect(parsed.kind).toBe("run");
        if (parsed.kind === "run") expect(parsed.options.loopback).toEqual(loopback);
    });

    it.each([
        [[], /--project is required.*|--portal is required/],
        [["--project", "my-project"], /--portal is required/],
        [[...base, "--portal", "not a host"], /--portal "not a host" is not a host name/],
        [[...base, "--redirect-uri", "http://localhost/oauth"], /needs an explicit port/],
        [[...base, "--token-url", "http://oauth.bitrix.info/oauth/token/"], /must be an https URL/],
        [[...base, "--timeout", "0"], /--timeout must be a whole number/],
        [[...base, "--refresh-token-secret", "b24-access-token"], /two different secrets/],
        [[...base, "--unknown"], /Unknown option '--unknown'/],
    ])("refuses %j", (argv, message) => {
        const parsed = parseOptions(argv, {});
        expect(parsed.kind).toBe("usage_error");
        if (parsed.kind === "usage_error") expect(parsed.problems.join("\n")).toMatch(message);
    });

    it("--help explains every option", () => {
        expect(parseOptions(["--help"], {})).toEqual({ kind: "help" });
        const flags = [
            "--project",
            "--prefix",
            "--client-id-secret",
            "--client-secret-secret",
            "--access-token-secret",
            "--refresh-token-secret",
            "--portal",
            "--member-id",
            "--client-id",
            "--client-secret",
            "--redirect-uri",
            "--token-url",
            "--force",
            "--timeout",
            "--print-callback-url",
            "--help",
        ];
        for (const flag of flags) expect(usage).toMatch(new RegExp(`^  ${flag}\\b`, "m"));
        // …and nothing else: every flag in the help is one parseOptions knows.
        const documented = [...usage.matchAll(/^  (--[a-z-]+)/gm)].map((m) => m[1]);
        expect(documented.sort()).toEqual([...flags].sort());
        for (const variable of ["SECRET_MANAGER_EMULATOR_HOST", "STORE_RETRY_BUDGET_SECONDS", "B24_OAUTH_TOKEN_URL", "B24_PORTAL_DOMAIN"]) {
            expect(usage).toContain(variable);
        }
    });
});

describe("authorizeUrl", () => {
    it("is the portal's /oauth/authorize/ with client_id and state, plus redirect_uri only when one is given", () => {
        const plain = new URL(authorizeUrl({ portalDomain: "example.bitrix24.com", clientId: "local.1.2", state: "s1" }));
        expect(plain.origin + plain.pathname).toBe("https://example.bitrix24.com/oauth/authorize/");
        expect(Object.fromEntries(plain.searchParams)).toEqual({ client_id: "local.1.2", response_type: "code", state: "s1" });
        const withRedirect = new URL(authorizeUrl({ portalDomain: "example.bitrix24.com", clientId: "local.1.2", state: "s1", redirectUri: "http://localhost:8765/oauth" }));
        expect(withRedirect.searchParams.get("redirect_uri")).toBe("http://localhost:8765/oauth");
    });
});

describe("parsePastedRedirect", () => {
    const code = "avmocpghblyi01m3h42bljvqtyd19sw1";
    it.each([
        [`https://localhost/oauth?code=${code}&state=s&domain=example.bitrix24.com&member_id=m1&scope=crm&server_domain=oauth.bitrix.info`, "url"],
        [`  "https://localhost/oauth/?code=${code}&state=s&domain=example.bitrix24.com&member_id=m1"  `, "url"],
        [`?code=${code}&state=s&domain=example.bitrix24.com&member_id=m1`, "url"],
        [`code=${code}&state=s&domain=example.bitrix24.com&member_id=m1`, "url"],
    ])("reads %j", (text, source) => {
        expect(parsePastedRedirect(text)).toMatchObject({
            ok: true,
            source,
            params: { code, state: "s", domain: "example.bitrix24.com", memberId: "m1" },
        });
    });

    it("takes a bare code", () => {
        expect(parsePastedRedirect(` ${code}\n`)).toEqual({ ok: true, source: "code", params: { code } });
    });

    it.each([
        ["", "empty"],
        ["https://localhost/oauth?state=s", "no_code"],
        ["hello world", "unrecognised"],
        ["https://localhost/oauth?error=access_denied&state=s", "denied"],
    ])("refuses %j as %s", (text, reason) => {
        expect(parsePastedRedirect(text)).toMatchObject({ ok: false, reason });
    });
});
