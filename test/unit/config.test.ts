import { describe, expect, it } from "vitest";
import { readRefresherConfig } from "../../function/config";

const minimal = { PROJECT_ID: "demo-project", B24_CLIENT_ID: "local.abc.123", B24_CLIENT_SECRET: "s3cr3t-value-xyz" };

describe("readRefresherConfig", () => {
    it("applies the documented defaults", () => {
        const result = readRefresherConfig(minimal);
        expect(result).toEqual({
            ok: true,
            config: {
                projectId: "demo-project",
                clientId: "local.abc.123",
                clientSecret: "s3cr3t-value-xyz",
                secrets: { access: "b24-access-token", refresh: "b24-refresh-token" },
                tokenUrl: "https://oauth.bitrix.info/oauth/token/",
                marginSeconds: 1200,
                keepVersions: 2,
                portalDomain: undefined,
                emulatorHost: undefined,
                oauthResponseTimeoutMs: 30_000,
                storeRetryBudgetMs: 20_000,
            },
        });
    });

    it("names every missing variable and its fix, without echoing the secret", () => {
        const result = readRefresherConfig({ B24_CLIENT_SECRET: "s3cr3t-value-xyz" });
        expect(result.ok).toBe(false);
        const problems = !result.ok ? result.problems : [];
        expect(problems).toHaveLength(2);
        expect(problems[0]).toMatch(/^PROJECT_ID is not set/);
        expect(problems[1]).toMatch(/^B24_CLIENT_ID is not set: .*pulumi config set clientId/);
        expect(problems.join()).not.toContain("s3cr3t");
    });

    it.each([
        [{ B24_OAUTH_TOKEN_URL: "http://oauth.bitrix.info/oauth/token/" }, /B24_OAUTH_TOKEN_URL must be an https URL/],
        [{ B24_OAUTH_TOKEN_URL: "not a url" }, /B24_OAUTH_TOKEN_URL is not a URL/],
        [{ REFRESH_MARGIN_SECONDS: "20m" }, /REFRESH_MARGIN_SECONDS must be a whole number from 60 to 3540/],
        [{ REFRESH_MARGIN_SECONDS: "3600" }, /REFRESH_MARGIN_SECONDS must be a whole number/],
        [{ KEEP_VERSIONS: "0" }, /KEEP_VERSIONS must be a whole number from 1/],
        [{ ACCESS_TOKEN_SECRET: "b24/access" }, /ACCESS_TOKEN_SECRET must be a secret id/],
        [{ ACCESS_TOKEN_SECRET: "same", REFRESH_TOKEN_SECRET: "same" }, /must name two different secrets/],
        [{ SECRET_MANAGER_EMULATOR_HOST: "localhost" }, /SECRET_MANAGER_EMULATOR_HOST must be host:port/],
    ])("rejects %j", (extra, message) => {
        const result = readRefresherConfig({ ...minimal, ...extra });
        expect(result.ok).toBe(false);
        expect(!result.ok && result.problems.join("\n")).toMatch(message);
    });

    it("allows plain http only to a loopback sandbox", () => {
        const result = readRefresherConfig({ ...minimal, B24_OAUTH_TOKEN_URL: "http://127.0.0.1:9000/oauth/token/" });
        expect(result.ok).toBe(true);
    });
});
