// Stack configuration: every invalid or missing value fails with one message naming the key and
// the exact `pulumi config set …` that fixes it. Pure cases go through parseStackConfig; the
// runtime cases through the real Pulumi config store, as `pulumi preview` fills it.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it, vi } from "vitest";
import { ConfigError, configDefaults, type ConfigKey, type ConfigSource, parseStackConfig } from "../../infra/config";
import { evaluateProgram, exampleStackConfig, plainClientSecret, projectName } from "./helpers";

// The program must not get as far as building a bundle in these tests.
vi.mock("../../infra/function-bundle", () => ({
    buildFunctionBundle: () => Promise.reject(new Error("config tests must fail before the bundle is built")),
}));

const now = new Date("2025-01-01T00:00:00Z");

/** A config source over bare keys (`portalDomain`, `gcp:project`), as the stack file holds them. */
function source(values: Partial<Record<ConfigKey, string>>, secretKeys: ConfigKey[] = ["clientSecret"]): ConfigSource {
    return { get: (key) => values[key], isSecret: (key) => secretKeys.includes(key) };
}

const valid: Partial<Record<ConfigKey, string>> = {
    "gcp:project": "my-gcp-project",
    "gcp:region": "europe-central2",
    portalDomain: "example.bitrix24.com",
    clientId: "local.0123456789abcd.01234567",
    clientSecret: plainClientSecret,
};

function problemOf(values: Partial<Record<ConfigKey, string>>, secretKeys?: ConfigKey[]): ConfigError {
    try {
        parseStackConfig(source(values, secretKeys), now);
    } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect(error).toBeInstanceOf(pulumi.RunError); // printed without a stack trace
        return error as ConfigError;
    }
    throw new Error("expected a ConfigError");
}

describe("parseStackConfig", () => {
    it("fills the defaults and derives the margin for a minimal valid stack", async () => {
        const config = parseStackConfig(source(valid), now);
        expect(config).toMatchObject({
            project: "my-gcp-project",
            region: "europe-central2",
            portalDomain: "example.bitrix24.com",
            clientId: "local.0123456789abcd.01234567",
            schedule: configDefaults.schedule,
            timeZone: configDefaults.timeZone,
            oauthTokenUrl: configDefaults.oauthTokenUrl,
            alertEmail: undefined,
            refreshMarginSeconds: 1200,
            callback: false,
            memberId: undefined,
        });
        expect(await pulumi.isSecret(config.clientSecret)).toBe(true);
    });

    it.each<[string, Partial<Record<ConfigKey, string>>, ConfigKey, string]>([
        ["missing portalDomain", { portalDomain: undefined }, "portalDomain", "pulumi config set portalDomain <your-portal>.bitrix24.com"],
        ["missing clientId", { clientId: undefined }, "clientId", "pulumi config set clientId <client-id>"],
        ["missing clientSecret", { clientSecret: undefined }, "clientSecret", "pulumi config set --secret clientSecret <client-secret>"],
        ["missing gcp:project", { "gcp:project": undefined }, "gcp:project", "pulumi config set gcp:project <your-project-id>"],
        ["missing gcp:region", { "gcp:region": "" }, "gcp:region", "pulumi config set gcp:region europe-central2"],
        ["a schedule that is not cron", { schedule: "every 10 minutes" }, "schedule", 'pulumi config set schedule "*/10 * * * *"'],
        ["a six-field cron", { schedule: "0 */10 * * * *" }, "schedule", 'pulumi config set schedule "*/10 * * * *"'],
        ["an out-of-range cron", { schedule: "*/10 25 * * *" }, "schedule", 'pulumi config set schedule "*/10 * * * *"'],
        ["a schedule too sparse for the token's hour", { schedule: "0 * * * *" }, "schedule", 'pulumi config set schedule "*/10 * * * *"'],
        ["a URL as portal domain", { portalDomain: "https://b24-n1mv3w.bitrix24.pl/" }, "portalDomain", "pulumi config set portalDomain b24-n1mv3w.bitrix24.pl"],
        ["a portal domain that is no host", { portalDomain: "my portal" }, "portalDomain", "pulumi config set portalDomain <your-portal>.bitrix24.com"],
        ["an http token URL", { oauthTokenUrl: "http://oauth.bitrix.info/oauth/token/" }, "oauthTokenUrl", "pulumi config set oauthTokenUrl https://oauth.bitrix.info/oauth/token/"],
        ["a token URL that is no URL", { oauthTokenUrl: "oauth.bitrix.info" }, "oauthTokenUrl", "pulumi config set oauthTokenUrl https://oauth.bitrix.info/oauth/token/"],
        ["an unknown time zone", { timeZone: "Mars/Olympus_Mons" }, "timeZone", "pulumi config set timeZone Etc/UTC"],
        ["a UTC offset as time zone", { timeZone: "+02:00" }, "timeZone", "pulumi config set timeZone Etc/UTC"],
        ["a bad alert e-mail", { alertEmail: "ops-at-example" }, "alertEmail", "pulumi config set alertEmail <you@example.com>"],
        ["a bad project id", { "gcp:project": "My Project" }, "gcp:project", "pulumi config set gcp:project <your-project-id>"],
        ["a callback that is no boolean", { callback: "yes" }, "callback", "pulumi config set callback true"],
        ["a capitalised boolean, which the Pulumi CLI refuses too", { callback: "True" }, "callback", "pulumi config set callback true"],
        ["a member_id with spaces", { memberId: "a223 c6b3" }, "memberId", "pulumi config set memberId <member-id>"],
    ])("rejects %s, naming %s and the fix", (_case, override, key, fix) => {
        const error = problemOf({ ...valid, ...override });
        expect(error.problems).toHaveLength(1);
        expect(error.problems[0]).toMatchObject({ key, fix });
        expect(error.message).toContain(`- ${key}: `);
        expect(error.message).toContain(`fix: ${fix}`);
    });

    it("rejects a client secret stored in plain text without echoing it", () => {
        const error = problemOf(valid, []);
        expect(error.problems).toEqual([
            expect.objectContaining({ key: "clientSecret", fix: "pulumi config set --secret clientSecret <client-secret>" }),
        ]);
        expect(error.message).toContain("plain text");
        expect(error.message).not.toContain(plainClientSecret);
    });

    it("reports every problem at once, in one message", () => {
        const error = problemOf({ clientSecret: plainClientSecret, schedule: "0 * * * *", alertEmail: "nobody" }, []);
        expect(error.problems.map((p) => p.key)).toEqual(["gcp:project", "gcp:region", "portalDomain", "clientId", "clientSecret", "schedule", "alertEmail"]);
        expect(error.message.split("\n")[0]).toBe("Invalid stack configuration (7 problems):");
    });

    it("reads the callback switch and the member_id", () => {
        expect(parseStackConfig(source({ ...valid, callback: "true", memberId: "a223c6b3710f85df22e9377d6c4f7553" }), now)).toMatchObject({
            callback: true,
            memberId: "a223c6b3710f85df22e9377d6c4f7553",
        });
        // Pulumi.yaml's default arrives as the string "false"; the member_id is kept while the callback is off.
        expect(parseStackConfig(source({ ...valid, callback: "false", memberId: "m1" }), now)).toMatchObject({ callback: false, memberId: "m1" });
    });

    it("does not judge a schedule against a time zone it cannot use", () => {
        const error = problemOf({ ...valid, schedule: "*/10 * * * *", timeZone: "Nowhere/Town" });
        expect(error.problems.map((p) => p.key)).toEqual(["timeZone"]);
    });
});

describe("the program's configuration, through the Pulumi runtime", () => {
    const importProgram = async () => {
        vi.resetModules();
        return (await import("../../infra/index")) as Record<string, unknown>;
    };

    it("refuses a client secret that the stack holds in plain text", async () => {
        const config = exampleStackConfig();
        const failure = evaluateProgram({ config, secretKeys: [], importProgram });
        await expect(failure).rejects.toThrow(/clientSecret: is stored in plain text[\s\S]*fix: pulumi config set --secret clientSecret <client-secret>/);
        await expect(failure).rejects.not.toThrow(plainClientSecret);
    });

    it("names provider keys with their namespace", async () => {
        const config = exampleStackConfig();
        delete config["gcp:region"];
        await expect(evaluateProgram({ config, importProgram })).rejects.toThrow(/- gcp:region: is not set\n {4}fix: pulumi config set gcp:region europe-central2/);
    });

    it("reads the project's keys from the project's namespace", async () => {
        const config = exampleStackConfig();
        config[`${projectName}:schedule`] = "0 */2 * * *";
        await expect(evaluateProgram({ config, importProgram })).rejects.toThrow(/- schedule: ticks of "0 \*\/2 \* \* \*" can be at least 60 min apart/);
    });
});
