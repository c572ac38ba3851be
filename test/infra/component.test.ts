// The TokenRotation component on its own: argument checks before any child, resource options of
// the children, two portals in one stack, and the content-hashed bundle with the real builder.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enableProjectServices } from "../../infra/apis";
import { buildFunctionBundle, type FunctionBundle } from "../../infra/function-bundle";
import { authorizeUrl, callbackOffOutput, cloudNames, TokenRotation, type TokenRotationArgs } from "../../infra/token-rotation";
import { createMocks, plainClientSecret, projectName, promiseOf, type ResourceRecord, repoRoot, settle, tempDir, unwrap } from "./helpers";

const project = "my-gcp-project";

/** A bundle stand-in: the component only needs its folder and hash. */
const fakeBundle: FunctionBundle = { dir: "/nonexistent/bundle", sha256: "a".repeat(64), files: [] };

function baseArgs(overrides: Partial<TokenRotationArgs> = {}): TokenRotationArgs {
    return {
        project,
        region: "europe-central2",
        portalDomain: "example.bitrix24.com",
        clientId: "local.0123456789abcd.01234567",
        clientSecret: pulumi.secret(plainClientSecret),
        bundle: fakeBundle,
        ...overrides,
    };
}

interface Recorded {
    records: ResourceRecord[];
    options: Map<string, pulumi.ResourceOptions>;
}

/** Creates components under fresh mocks and waits for every registration. */
async function record(create: (transformations: pulumi.ResourceTransformation[]) => void): Promise<Recorded> {
    const records: ResourceRecord[] = [];
    const options = new Map<string, pulumi.ResourceOptions>();
    await pulumi.runtime.setMocks(createMocks(records), projectName, "dev", false);
    create([
        (args) => {
            options.set(`${args.type}::${args.name}`, args.opts);
            return undefined;
        },
    ]);
    await settle();
    return { records, options };
}

describe("arguments", () => {
    it.each<[string, Partial<TokenRotationArgs>, string]>([
        ["a URL as portal domain", { portalDomain: "https://example.bitrix24.com" }, "portalDomain:"],
        ["a sparse schedule", { schedule: "0 * * * *" }, "schedule:"],
        ["a bad cron", { schedule: "*/10 * * *" }, "schedule:"],
        ["an http token URL", { oauthTokenUrl: "http://oauth.bitrix.info/oauth/token/" }, "oauthTokenUrl:"],
        ["an unknown zone", { timeZone: "Mars/Base" }, "timeZone:"],
        ["an empty client secret", { clientSecret: "" }, "clientSecret:"],
        ["an upper-case prefix", { namePrefix: "B24" }, "namePrefix:"],
        ["a prefix too long for service account ids", { namePrefix: "a-very-long-prefix" }, "namePrefix:"],
        ["a bad project id", { project: "x" }, "project:"],
        ["a callback switch that is no boolean", { callback: "true" as unknown as boolean }, "callback:"],
        ["a member_id with spaces", { memberId: "a223 c6b3" }, "memberId:"],
    ])("rejects %s before creating any child", async (_case, override, arg) => {
        let thrown: unknown;
        const { records } = await record(() => {
            try {
                new TokenRotation("portal", baseArgs(override));
            } catch (error) {
                thrown = error;
            }
        });
        expect(thrown).toBeInstanceOf(Error);
        expect((thrown as Error).message).toContain('TokenRotation "portal" has invalid arguments');
        expect((thrown as Error).message).toContain(`- ${arg}`);
        expect(records).toEqual([]);
    });
});

describe("children", () => {
    let recorded: Recorded;
    let rotation: TokenRotation;

    beforeAll(async () => {
        recorded = await record((transformations) => {
            rotation = new TokenRotation("portal", baseArgs({ alertEmail: "ops@example.com" }), { transformations });
        });
    });

    it("are parented to the component", () => {
        const children = [...recorded.options.entries()].filter(([key]) => !key.startsWith(TokenRotation.type));
        expect(children.length).toBeGreaterThan(30);
        for (const [key, opts] of children) expect(opts.parent, key).toBe(rotation);
    });

    it("leave the token secrets' annotations (the refresher's lease) alone", () => {
        const ignored = (name: string) => recorded.options.get(`gcp:secretmanager/secret:Secret::${name}`)?.ignoreChanges;
        expect(ignored("portal-access-token-secret")).toEqual(["annotations"]);
        expect(ignored("portal-refresh-token-secret")).toEqual(["annotations"]);
        expect(ignored("portal-client-id-secret")).toBeUndefined();
        expect(ignored("portal-client-secret-secret")).toBeUndefined();
        const versions = recorded.records.filter((r) => r.type === "gcp:secretmanager/secretVersion:SecretVersion");
        expect(versions.map((r) => unwrap<string>(r.inputs.secret))).toEqual([
            `projects/${project}/secrets/b24-client-id`,
            `projects/${project}/secrets/b24-client-secret`,
        ]);
    });

    it("mail alerts to alertEmail when it is set", () => {
        const channel = recorded.records.filter((r) => r.type === "gcp:monitoring/notificationChannel:NotificationChannel");
        expect(channel.map((r) => r.inputs)).toEqual([expect.objectContaining({ type: "email", labels: { email_address: "ops@example.com" } })]);
        const alerts = recorded.records.filter((r) => r.type === "gcp:monitoring/alertPolicy:AlertPolicy");
        expect(alerts.map((r) => r.inputs.notificationChannels)).toEqual([
            [`projects/${project}/notificationChannels/42`],
            [`projects/${project}/notificationChannels/42`],
        ]);
    });

    it("expose the outputs", async () => {
        expect(await promiseOf(rotation.authorizeUrl)).toBe(authorizeUrl("example.bitrix24.com", "local.0123456789abcd.01234567"));
        expect(await promiseOf(rotation.refreshMarginSeconds)).toBe(1200);
        expect(await promiseOf(rotation.runtimeServiceAccountEmail)).toBe(`b24-token-refresher@${project}.iam.gserviceaccount.com`);
        expect(await promiseOf(rotation.sourceObjectName)).toBe(`b24-token-refresh/${"a".repeat(64)}.zip`);
        expect(await promiseOf(rotation.callbackUrl)).toBe(callbackOffOutput);
    });
});

/** The identity a resource has in Google Cloud, or undefined when it has none of its own. */
function cloudIdentity(r: ResourceRecord): string | undefined {
    const i = r.inputs as Record<string, any>;
    const v = (key: string) => String(unwrap(i[key]));
    switch (r.type) {
        case "gcp:secretmanager/secret:Secret":
            return `secret ${v("secretId")}`;
        case "gcp:serviceaccount/account:Account":
            return `account ${v("accountId")}`;
        case "gcp:projects/iAMCustomRole:IAMCustomRole":
            return `role ${v("roleId")}`;
        case "gcp:projects/service:Service":
            return `api ${v("service")}`;
        case "gcp:projects/serviceIdentity:ServiceIdentity":
            return `agent ${v("service")}`;
        case "gcp:monitoring/alertPolicy:AlertPolicy":
        case "gcp:monitoring/notificationChannel:NotificationChannel":
            return `${r.type} ${v("displayName")}`;
        case "gcp:secretmanager/secretVersion:SecretVersion":
            return `version of ${v("secret")}`;
        case "gcp:secretmanager/secretIamMember:SecretIamMember":
            return `${v("secretId")} ${v("role")} ${v("member")}`;
        case "gcp:serviceaccount/iAMMember:IAMMember":
            return `${v("serviceAccountId")} ${v("role")} ${v("member")}`;
        case "gcp:projects/iAMMember:IAMMember":
        case "gcp:cloudrunv2/serviceIamMember:ServiceIamMember":
            return `${r.type} ${v("name")} ${v("role")} ${v("member")}`;
        case "gcp:storage/bucketObject:BucketObject":
            return `object ${v("bucket")}/${v("name")}`;
        default:
            return r.custom ? `${r.type} ${v("name")}` : undefined;
    }
}

describe("two portals in one stack", () => {
    const duplicates = (values: (string | undefined)[]) =>
        values.filter((v): v is string => v !== undefined).filter((v, i, all) => all.indexOf(v) !== i);

    it("collide neither in Pulumi URNs nor in cloud names, callbacks included", async () => {
        const { records } = await record(() => {
            const shared = enableProjectServices("project-services", project);
            new TokenRotation("b24", baseArgs({ projectServices: shared, callback: true }));
            new TokenRotation("acme", baseArgs({ namePrefix: "acme", portalDomain: "acme.bitrix24.de", projectServices: shared, callback: true }));
        });
        const monitor = pulumi.runtime.getMonitor() as unknown as { getRegisteredResources(): Map<string, unknown> };
        expect(monitor.getRegisteredResources().size, "distinct URNs").toBe(records.length);
        expect(duplicates(records.map((r) => `${r.type}::${r.name}`))).toEqual([]);
        expect(duplicates(records.map(cloudIdentity))).toEqual([]);
        const functions = new Map(records.filter((r) => r.type === "gcp:cloudfunctionsv2/function:Function").map((r) => [r.inputs.name as string, r.inputs as Record<string, any>]));
        expect([...functions.keys()].sort()).toEqual(["acme-oauth-callback", "acme-token-refresh", "b24-oauth-callback", "b24-token-refresh"]);
        // Each callback serves its own portal, from its own portal's bundle object and secrets.
        const acme = unwrap<Record<string, any>>(functions.get("acme-oauth-callback")!.serviceConfig);
        expect(acme.environmentVariables).toMatchObject({ B24_PORTAL_DOMAIN: "acme.bitrix24.de", REFRESH_TOKEN_SECRET: "acme-refresh-token" });
        expect(acme.environmentVariables.B24_MEMBER_ID).toBeUndefined();
        expect(functions.get("acme-oauth-callback")!.buildConfig.source).toEqual(functions.get("acme-token-refresh")!.buildConfig.source);
        const publicGrants = records.filter((r) => r.inputs.member === "allUsers");
        expect(publicGrants.map((r) => `${r.type} ${r.inputs.name}`).sort()).toEqual([
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember acme-oauth-callback",
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember b24-oauth-callback",
        ]);
    });

    it("only share project-wide APIs when each enables its own", async () => {
        const { records } = await record(() => {
            new TokenRotation("b24", baseArgs());
            new TokenRotation("acme", baseArgs({ namePrefix: "acme" }));
        });
        expect(duplicates(records.map((r) => `${r.type}::${r.name}`))).toEqual([]);
        expect(new Set(duplicates(records.map(cloudIdentity)).map((d) => d.split(" ")[0]))).toEqual(new Set(["api", "agent"]));
    });

    it("names everything after the prefix", () => {
        expect(cloudNames("acme", project)).toEqual({
            functionName: "acme-token-refresh",
            callbackFunctionName: "acme-oauth-callback",
            topicName: "acme-token-refresh-trigger",
            jobName: "acme-token-refresh-job",
            bucketName: `${project}-acme-refresher-source`,
            secrets: { clientId: "acme-client-id", clientSecret: "acme-client-secret", accessToken: "acme-access-token", refreshToken: "acme-refresh-token" },
            identities: {
                runtimeAccountId: "acme-token-refresher",
                triggerAccountId: "acme-refresh-trigger",
                buildAccountId: "acme-refresh-build",
                refresherRoleId: "acme_token_refresher",
            },
            monitoring: {
                failureMetric: "acme-token-refresh-failures",
                successMetric: "acme-token-refresh-successes",
                notificationChannel: "acme token refresh alerts",
                failureAlert: "acme: token refresh failing",
                missingSuccessAlert: "acme: no successful token refresh",
            },
        });
    });
});

describe("the bundle's object name", () => {
    // The real builder on a scratch copy of function/, so the code can change without touching
    // function/ or dist/ (node_modules is linked next to it for esbuild's resolution).
    let copy: string;
    const build = (out: string) => buildFunctionBundle(path.join(copy, out), path.join(copy, "function"));

    beforeAll(() => {
        copy = tempDir("bundle");
        fs.cpSync(path.join(repoRoot, "function"), path.join(copy, "function"), { recursive: true });
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(copy, "node_modules"), "dir");
    });

    afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

    async function objectAndFunctionSource(bundle: FunctionBundle): Promise<{ object: string; functionObject: string }> {
        const { records } = await record(() => new TokenRotation("portal", baseArgs({ bundle })));
        const object = records.find((r) => r.type === "gcp:storage/bucketObject:BucketObject")!;
        const fn = records.find((r) => r.type === "gcp:cloudfunctionsv2/function:Function")!;
        return {
            object: object.inputs.name as string,
            functionObject: (fn.inputs.buildConfig as { source: { storageSource: { object: string } } }).source.storageSource.object,
        };
    }

    it("stays the same for unchanged code and changes with the code", async () => {
        const first = await build("out-1");
        const again = await build("out-2");
        expect(again.sha256).toBe(first.sha256);
        const before = await objectAndFunctionSource(first);
        expect(before.object).toBe(`b24-token-refresh/${first.sha256}.zip`);
        expect(before.functionObject).toBe(before.object);
        expect(await objectAndFunctionSource(again)).toEqual(before);

        fs.appendFileSync(path.join(copy, "function", "index.ts"), '\nexport const bundleProbe = "changed";\n');
        const changed = await build("out-3");
        expect(changed.sha256).not.toBe(first.sha256);
        const after = await objectAndFunctionSource(changed);
        expect(after.object).toBe(`b24-token-refresh/${changed.sha256}.zip`);
        expect(after.functionObject).toBe(after.object);
        expect(after.object).not.toBe(before.object);
    });
});

describe("grantAccessTokenReader", () => {
    it("lets a consumer read the access-token secret alone, as a child of the rotation", async () => {
        const { records, options } = await record((transformations) => {
            const rotation = new TokenRotation("b24", baseArgs(), { transformations });
            rotation.grantAccessTokenReader("orders-api", "serviceAccount:orders-api@my-gcp-project.iam.gserviceaccount.com");
        });
        const grants = records.filter(
            (r) => r.type === "gcp:secretmanager/secretIamMember:SecretIamMember" && String(r.inputs.member).startsWith("serviceAccount:orders-api@"),
        );
        expect(grants.map((g) => g.inputs.role).sort()).toEqual(["roles/secretmanager.secretAccessor", "roles/secretmanager.viewer"]);
        const accessSecretId = cloudNames("b24", project).secrets.accessToken;
        for (const grant of grants) {
            expect(String(grant.inputs.secretId)).toContain(accessSecretId);
            expect(options.get(`${grant.type}::${grant.name}`)?.parent).toBeInstanceOf(TokenRotation);
        }
    });
});
