// The whole program under Pulumi mocks with the example stack (Pulumi.dev.yaml plus the client
// secret it leaves out): one evaluation, then the resource graph, IAM and secrecy are checked.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { requiredApis } from "../../infra/apis";
import { hashBundleDir } from "../../infra/function-bundle";
import { refresherPermissions } from "../../infra/iam";
import {
    type Evaluation,
    evaluateProgram,
    exampleStackConfig,
    isWrappedSecret,
    ofType,
    plainClientSecret,
    plainStrings,
    projectName,
    promiseOf,
    type ResourceRecord,
    repoRoot,
    single,
    tempDir,
    unwrap,
} from "./helpers";

// The real builder on the real function/, but into a scratch folder: dist/function belongs to
// `npm run build` and the end-to-end suite, which may be reading it right now.
const scratch = vi.hoisted(() => ({ dir: "" }));
vi.mock("../../infra/function-bundle", async (importOriginal) => {
    const real = await importOriginal<typeof import("../../infra/function-bundle")>();
    return {
        ...real,
        buildFunctionBundle: (outDir?: string, sourceDir?: string) => real.buildFunctionBundle(outDir ?? path.join(scratch.dir, "function"), sourceDir),
    };
});

const project = "my-gcp-project";
const region = "europe-central2";
const runtimeMember = `serviceAccount:b24-token-refresher@${project}.iam.gserviceaccount.com`;
const triggerMember = `serviceAccount:b24-refresh-trigger@${project}.iam.gserviceaccount.com`;
const buildMember = `serviceAccount:b24-refresh-build@${project}.iam.gserviceaccount.com`;

let evaluation: Evaluation;
let records: ResourceRecord[];
const configReads = new Set<string>();

const T = {
    component: "b24-token-rotation:index:TokenRotation",
    service: "gcp:projects/service:Service",
    secret: "gcp:secretmanager/secret:Secret",
    secretVersion: "gcp:secretmanager/secretVersion:SecretVersion",
    secretIam: "gcp:secretmanager/secretIamMember:SecretIamMember",
    account: "gcp:serviceaccount/account:Account",
    accountIam: "gcp:serviceaccount/iAMMember:IAMMember",
    customRole: "gcp:projects/iAMCustomRole:IAMCustomRole",
    projectIam: "gcp:projects/iAMMember:IAMMember",
    runInvoker: "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    function: "gcp:cloudfunctionsv2/function:Function",
    bucket: "gcp:storage/bucket:Bucket",
    object: "gcp:storage/bucketObject:BucketObject",
    topic: "gcp:pubsub/topic:Topic",
    job: "gcp:cloudscheduler/job:Job",
    metric: "gcp:logging/metric:Metric",
    alert: "gcp:monitoring/alertPolicy:AlertPolicy",
    channel: "gcp:monitoring/notificationChannel:NotificationChannel",
} as const;

beforeAll(async () => {
    scratch.dir = tempDir("program-bundle");
    // Record which configuration keys the program actually reads.
    for (const method of ["get", "require", "getSecret", "requireSecret", "getObject", "requireObject", "getNumber", "getBoolean"] as const) {
        const original = pulumi.Config.prototype[method] as (this: pulumi.Config, key: string, ...rest: unknown[]) => unknown;
        vi.spyOn(pulumi.Config.prototype, method).mockImplementation(function (this: pulumi.Config, key: string, ...rest: unknown[]) {
            configReads.add(this.name === projectName ? key : `${this.name}:${key}`);
            return original.call(this, key, ...rest) as never;
        });
    }
    evaluation = await evaluateProgram({
        config: exampleStackConfig(),
        importProgram: async () => (await import("../../infra/index")) as Record<string, unknown>,
    });
    records = evaluation.records;
});

afterAll(() => {
    vi.restoreAllMocks();
    fs.rmSync(scratch.dir, { recursive: true, force: true });
});

const inputs = (r: ResourceRecord) => r.inputs as Record<string, any>;
const named = (type: string, name: string) => {
    const found = records.filter((r) => r.type === type && r.name === name);
    expect(found, `${type} ${name}`).toHaveLength(1);
    return inputs(found[0]!);
};

describe("resource graph", () => {
    it("groups everything in one TokenRotation component", () => {
        const component = single(records, T.component);
        expect(component.name).toBe("b24");
        expect(component.custom).toBe(false);
        const counts = Object.fromEntries(Object.values(T).map((t) => [t, ofType(records, t).length]));
        expect(counts).toEqual({
            [T.component]: 1,
            [T.service]: requiredApis.length,
            [T.secret]: 4,
            [T.secretVersion]: 2,
            [T.secretIam]: 4,
            [T.account]: 3,
            [T.accountIam]: 1,
            [T.customRole]: 1,
            [T.projectIam]: 1,
            [T.runInvoker]: 1,
            [T.function]: 1,
            [T.bucket]: 1,
            [T.object]: 1,
            [T.topic]: 1,
            [T.job]: 1,
            [T.metric]: 2,
            [T.alert]: 2,
            [T.channel]: 0, // the example stack sets no alertEmail
        });
        expect(records.filter((r) => !(Object.values(T) as string[]).includes(r.type)).map((r) => r.type)).toEqual([
            "gcp:projects/serviceIdentity:ServiceIdentity",
        ]);
    });

    it("invokes no provider function (the call mock would refuse it)", () => {
        expect(evaluation.calls).toEqual([]);
    });

    it("names every child after the component and in kebab-case", () => {
        for (const r of records.filter((r) => r.type !== T.component)) {
            expect(r.name).toMatch(/^b24-[a-z0-9]+(-[a-z0-9]+)*$/);
        }
    });

    it("enables every API it uses and never disables one on destroy", () => {
        expect(ofType(records, T.service).map((r) => inputs(r).service).sort()).toEqual([...requiredApis].sort());
        for (const r of ofType(records, T.service)) {
            expect(inputs(r)).toMatchObject({ project, disableOnDestroy: false, disableDependentServices: false });
        }
    });

    it("creates the guide's four secrets, versions only for the client credentials", () => {
        expect(ofType(records, T.secret).map((r) => inputs(r).secretId).sort()).toEqual([
            "b24-access-token",
            "b24-client-id",
            "b24-client-secret",
            "b24-refresh-token",
        ]);
        for (const r of ofType(records, T.secret)) expect(inputs(r)).toMatchObject({ project, replication: { auto: {} } });
        expect(ofType(records, T.secretVersion).map((r) => inputs(r).secret).sort()).toEqual([
            `projects/${project}/secrets/b24-client-id`,
            `projects/${project}/secrets/b24-client-secret`,
        ]);
        // The provider treats every payload as secret, the client id's too.
        expect(unwrap(named(T.secretVersion, "b24-client-id-version").secretData)).toBe("local.0123456789abcd.01234567");
    });

    it("deploys the gen2 function with the runtime contract", () => {
        const fn = single(records, T.function).inputs as Record<string, any>;
        expect(fn).toMatchObject({ project, location: region, name: "b24-token-refresh" });
        expect(fn.buildConfig).toMatchObject({
            runtime: "nodejs22",
            entryPoint: "refreshTokens",
            serviceAccount: `projects/${project}/serviceAccounts/b24-refresh-build@${project}.iam.gserviceaccount.com`,
            source: { storageSource: { bucket: `${project}-b24-refresher-source`, object: inputs(single(records, T.object)).name } },
        });
        const service = unwrap<Record<string, any>>(fn.serviceConfig);
        expect(service).toMatchObject({
            minInstanceCount: 0,
            maxInstanceCount: 1,
            maxInstanceRequestConcurrency: 1,
            timeoutSeconds: 120,
            availableMemory: "256Mi",
            ingressSettings: "ALLOW_INTERNAL_ONLY",
            serviceAccountEmail: `b24-token-refresher@${project}.iam.gserviceaccount.com`,
        });
        expect(service.environmentVariables).toEqual({
            PROJECT_ID: project,
            ACCESS_TOKEN_SECRET: "b24-access-token",
            REFRESH_TOKEN_SECRET: "b24-refresh-token",
            B24_OAUTH_TOKEN_URL: "https://oauth.bitrix.info/oauth/token/",
            REFRESH_MARGIN_SECONDS: "1200",
            KEEP_VERSIONS: "2",
            B24_PORTAL_DOMAIN: "example.bitrix24.com",
        });
        // Pinned to the Pulumi-managed version numbers, never `latest`.
        expect(service.secretEnvironmentVariables).toEqual([
            { key: "B24_CLIENT_ID", projectId: project, secret: "b24-client-id", version: "1" },
            { key: "B24_CLIENT_SECRET", projectId: project, secret: "b24-client-secret", version: "1" },
        ]);
        expect(fn.eventTrigger).toEqual({
            eventType: "google.cloud.pubsub.topic.v1.messagePublished",
            pubsubTopic: `projects/${project}/topics/b24-token-refresh-trigger`,
            retryPolicy: "RETRY_POLICY_RETRY",
            serviceAccountEmail: `b24-refresh-trigger@${project}.iam.gserviceaccount.com`,
            triggerRegion: region,
        });
    });

    it("uploads the bundle the real builder made, under its content hash", () => {
        const object = inputs(single(records, T.object));
        const bundleDir = path.join(scratch.dir, "function");
        expect(object.name).toBe(`b24-token-refresh/${hashBundleDir(bundleDir)}.zip`);
        expect(object.bucket).toBe(`${project}-b24-refresher-source`);
        expect(object.source).toBeInstanceOf(pulumi.asset.FileArchive);
        expect(fs.readdirSync(bundleDir).sort()).toEqual(["index.js", "package.json"]);
        expect(inputs(single(records, T.bucket))).toMatchObject({
            name: `${project}-b24-refresher-source`,
            location: "EUROPE-CENTRAL2",
            uniformBucketLevelAccess: true,
            publicAccessPrevention: "enforced",
            forceDestroy: true,
        });
    });

    it("ticks on the configured schedule and zone through the guide's topic", () => {
        const topic = inputs(single(records, T.topic));
        expect(topic).toMatchObject({ project, name: "b24-token-refresh-trigger" });
        const job = inputs(single(records, T.job));
        expect(job).toMatchObject({
            project,
            region,
            name: "b24-token-refresh-job",
            schedule: "*/10 * * * *",
            timeZone: "Europe/Warsaw",
            pubsubTarget: { topicName: `projects/${project}/topics/b24-token-refresh-trigger`, data: Buffer.from("{}").toString("base64") },
        });
        expect(job.retryConfig.retryCount).toBeGreaterThan(0);
    });

    it("alerts at once on a CRITICAL line, on transient failures that outlast two ticks, and on two hours without a successful refresh", () => {
        const source = 'resource.type="cloud_run_revision" AND resource.labels.service_name="b24-token-refresh"';
        expect(named(T.metric, "b24-failure-metric")).toMatchObject({
            name: "b24-token-refresh-failures",
            filter: `${source} AND severity>=ERROR`,
            labelExtractors: { event: "EXTRACT(jsonPayload.event)", severity: "EXTRACT(severity)" },
        });
        expect(named(T.metric, "b24-success-metric")).toMatchObject({
            name: "b24-token-refresh-successes",
            filter: `${source} AND jsonPayload.event="refresh.succeeded"`,
        });
        const failure = named(T.alert, "b24-failure-alert");
        const failures = 'resource.type="cloud_run_revision" AND metric.type="logging.googleapis.com/user/b24-token-refresh-failures"';
        expect(failure.conditions[0].conditionThreshold).toMatchObject({
            filter: `${failures} AND metric.label."severity"="CRITICAL"`,
            comparison: "COMPARISON_GT",
            thresholdValue: 0,
            duration: "0s",
        });
        expect(failure.conditions[1].conditionThreshold).toMatchObject({
            filter: failures,
            comparison: "COMPARISON_GT",
            thresholdValue: 0,
            duration: "600s",
        });
        const missing = named(T.alert, "b24-missing-success-alert");
        expect(missing.conditions[0].conditionAbsent).toMatchObject({
            filter: 'resource.type="cloud_run_revision" AND metric.type="logging.googleapis.com/user/b24-token-refresh-successes"',
            duration: "7200s",
            aggregations: [{ crossSeriesReducer: "REDUCE_SUM" }],
        });
        expect(failure.notificationChannels ?? []).toEqual([]);
    });

    it("exports the names, the authorize URL and what is switched off", async () => {
        const outputs: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(evaluation.exports)) {
            outputs[key] = pulumi.Output.isInstance(value) ? await promiseOf(value) : value;
        }
        expect(outputs).toEqual({
            functionName: "b24-token-refresh",
            topicName: "b24-token-refresh-trigger",
            schedulerJobName: "b24-token-refresh-job",
            clientIdSecretName: "b24-client-id",
            clientSecretSecretName: "b24-client-secret",
            accessTokenSecretName: "b24-access-token",
            refreshTokenSecretName: "b24-refresh-token",
            authorizeUrl: "https://example.bitrix24.com/oauth/authorize/?client_id=local.0123456789abcd.01234567&response_type=code",
            callbackUrl: "off: pulumi config set callback true",
            refreshMarginSeconds: 1200,
            ciWorkloadIdentityProvider: "off: pulumi config set githubRepository owner/repo",
            ciServiceAccount: "off: pulumi config set githubRepository owner/repo",
        });
    });

    it("reads exactly the configuration keys Pulumi.yaml declares, plus gcp:project and gcp:region", () => {
        const declared = Object.keys((parseYaml(fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8")) as { config: object }).config);
        expect([...configReads].sort()).toEqual([...declared, "gcp:project", "gcp:region"].sort());
    });
});

describe("IAM", () => {
    const bindings = () =>
        records
            .filter((r) => /IamMember|iAMMember|IamBinding|iAMBinding|IamPolicy|iAMPolicy/.test(r.type))
            .map((r): Record<string, any> => ({ type: r.type, name: r.name, ...(r.inputs as Record<string, any>) }));

    it("gives the runtime account no project-level role", () => {
        const projectLevel = records.filter((r) => r.type.startsWith("gcp:projects/iAM") && r.type !== T.customRole);
        expect(projectLevel.map((r) => inputs(r).member)).not.toContain(runtimeMember);
        expect(projectLevel.map((r) => [inputs(r).role, inputs(r).member])).toEqual([["roles/cloudbuild.builds.builder", buildMember]]);
    });

    it("gives the runtime account exactly the secret-level roles the refresher needs", () => {
        const runtime = bindings().filter((b) => b.member === runtimeMember);
        expect(runtime.map((b) => [b.type, b.secretId, b.role]).sort()).toEqual(
            [
                [T.secretIam, "b24-access-token", `projects/${project}/roles/b24_token_refresher`],
                [T.secretIam, "b24-client-id", "roles/secretmanager.secretAccessor"],
                [T.secretIam, "b24-client-secret", "roles/secretmanager.secretAccessor"],
                [T.secretIam, "b24-refresh-token", `projects/${project}/roles/b24_token_refresher`],
            ].sort(),
        );
        expect(inputs(single(records, T.customRole))).toMatchObject({
            project,
            roleId: "b24_token_refresher",
            permissions: [...refresherPermissions],
        });
        expect([...refresherPermissions].sort()).toEqual([
            "secretmanager.secrets.get",
            "secretmanager.secrets.update",
            "secretmanager.versions.access",
            "secretmanager.versions.add",
            "secretmanager.versions.destroy",
            "secretmanager.versions.list",
        ]);
    });

    it("lets the trigger account invoke this function only", () => {
        const trigger = bindings().filter((b) => b.member === triggerMember);
        expect(trigger).toEqual([
            expect.objectContaining({ type: T.runInvoker, project, location: region, name: "b24-token-refresh", role: "roles/run.invoker" }),
        ]);
    });

    it("lets only the Pub/Sub service agent sign as the trigger account", () => {
        expect(single(records, T.accountIam).inputs).toEqual({
            serviceAccountId: `projects/${project}/serviceAccounts/b24-refresh-trigger@${project}.iam.gserviceaccount.com`,
            role: "roles/iam.serviceAccountTokenCreator",
            member: "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com",
        });
    });

    it("grants nothing to all users and keeps every function internal-only (the callback is off)", () => {
        const everything = records.flatMap((r) => plainStrings(r.inputs).concat(plainStrings(unwrap(r.inputs))));
        expect(everything.filter((s) => /allUsers|allAuthenticatedUsers/.test(s))).toEqual([]);
        for (const fn of ofType(records, T.function)) expect(unwrap<Record<string, any>>(inputs(fn).serviceConfig).ingressSettings, fn.name).toBe("ALLOW_INTERNAL_ONLY");
    });
});

describe("the client secret", () => {
    it("reaches only the client-secret version's payload, wrapped as a secret", () => {
        const version = named(T.secretVersion, "b24-client-secret-version");
        expect(isWrappedSecret(version.secretData)).toBe(true);
        expect(unwrap(version.secretData)).toBe(plainClientSecret);
        const holders = records.filter((r) => JSON.stringify(r.inputs).includes(plainClientSecret));
        expect(holders.map((r) => r.name)).toEqual(["b24-client-secret-version"]);
    });

    it("never appears unwrapped in any resource input", () => {
        for (const r of records) expect(plainStrings(r.inputs).filter((s) => s.includes(plainClientSecret)), r.name).toEqual([]);
    });

    it("never appears in a stack output", async () => {
        for (const [key, value] of Object.entries(evaluation.exports)) {
            if (!pulumi.Output.isInstance(value)) continue;
            const resolved = await promiseOf(value);
            if (!(await pulumi.isSecret(value))) expect(JSON.stringify(resolved) ?? "", key).not.toContain(plainClientSecret);
        }
    });
});
