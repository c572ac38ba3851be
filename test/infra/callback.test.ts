// The optional OAuth callback, through the whole program under Pulumi mocks: with `callback` off
// nothing is public; with it on, exactly one more function (public ingress, the bundle's
// `oauthCallback` entry point) and one allUsers invoker binding on that function's service, while
// every other resource keeps its inputs, and so its exposure. The authorize URL then carries the
// callback's state, derived from the client secret, and is a Pulumi secret.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { callbackState } from "../../function/core/authorization";
import { authorizeUrl } from "../../infra/token-rotation";
import { type Evaluation, evaluateProgram, exampleStackConfig, plainClientSecret, plainStrings, projectName, promiseOf, type ResourceRecord, unwrap } from "./helpers";

// The component only needs a folder and a hash; the real builder is exercised in program.test.ts.
const fake = vi.hoisted(() => ({ bundle: { dir: "/nonexistent/bundle", sha256: "c".repeat(64), files: [] } }));
vi.mock("../../infra/function-bundle", () => ({ buildFunctionBundle: async () => fake.bundle }));

const project = "my-gcp-project";
const region = "europe-central2";
const portalDomain = "example.bitrix24.com";
const clientId = "local.0123456789abcd.01234567";
const memberId = "a223c6b3710f85df22e9377d6c4f7553";
const runtimeEmail = `b24-token-refresher@${project}.iam.gserviceaccount.com`;

const T = {
    function: "gcp:cloudfunctionsv2/function:Function",
    runInvoker: "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
} as const;

function evaluate(overrides: Record<string, string>): Promise<Evaluation> {
    const config = exampleStackConfig();
    for (const [key, value] of Object.entries(overrides)) config[`${projectName}:${key}`] = value;
    return evaluateProgram({
        config,
        importProgram: async () => {
            vi.resetModules();
            return (await import("../../infra/index")) as Record<string, unknown>;
        },
    });
}

const key = (r: ResourceRecord) => `${r.type}::${r.name}`;
const inputs = (r: ResourceRecord) => unwrap<Record<string, any>>(r.inputs);

/** What decides who may reach a resource: a function's ingress, an IAM grant's member and role, a bucket's public access. */
function exposure(records: ResourceRecord[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const r of records) {
        const i = inputs(r);
        if (r.type === T.function) out[key(r)] = { ingress: unwrap<Record<string, unknown>>(i.serviceConfig).ingressSettings };
        else if (/IamMember|iAMMember|IamBinding|iAMBinding|IamPolicy|iAMPolicy/.test(r.type)) out[key(r)] = { member: i.member, members: i.members, role: i.role };
        else if (r.type === "gcp:storage/bucket:Bucket") out[key(r)] = { publicAccessPrevention: i.publicAccessPrevention, uniform: i.uniformBucketLevelAccess };
    }
    return out;
}

const everyString = (records: ResourceRecord[]) => records.flatMap((r) => plainStrings(unwrap(r.inputs)));

describe("the OAuth callback", () => {
    let off: Evaluation;
    let on: Evaluation;

    beforeAll(async () => {
        off = await evaluate({});
        on = await evaluate({ callback: "true", memberId });
    });

    describe("off (the default)", () => {
        it("deploys nothing public: no allUsers or allAuthenticatedUsers anywhere, every function internal-only", () => {
            expect(everyString(off.records).filter((s) => /allUsers|allAuthenticatedUsers/.test(s))).toEqual([]);
            const functions = off.records.filter((r) => r.type === T.function);
            expect(functions.map((r) => inputs(r).name)).toEqual(["b24-token-refresh"]);
            for (const fn of functions) expect(unwrap<Record<string, unknown>>(inputs(fn).serviceConfig).ingressSettings).toBe("ALLOW_INTERNAL_ONLY");
        });

        it("says how to switch it on, and keeps the authorize URL plain and without state", async () => {
            expect(await promiseOf(off.exports.callbackUrl as pulumi.Output<string>)).toBe("off: pulumi config set callback true");
            const url = off.exports.authorizeUrl as pulumi.Output<string>;
            expect(await pulumi.isSecret(url)).toBe(false);
            expect(await promiseOf(url)).toBe(authorizeUrl(portalDomain, clientId));
        });
    });

    describe("on", () => {
        const callbackRecord = () => {
            const found = on.records.filter((r) => r.type === T.function && inputs(r).name === "b24-oauth-callback");
            expect(found).toHaveLength(1);
            return found[0]!;
        };

        it("adds exactly the callback function and one public invoker binding", () => {
            const before = new Set(off.records.map(key));
            expect(on.records.filter((r) => !before.has(key(r))).map(key).sort()).toEqual([`${T.function}::b24-callback-function`, `${T.runInvoker}::b24-public-invokes-callback`]);
            const after = new Set(on.records.map(key));
            expect(off.records.filter((r) => !after.has(key(r))).map(key)).toEqual([]);
        });

        it("exposes that one function publicly: ALLOW_ALL ingress and allUsers as invoker of its service alone", () => {
            const functions = on.records.filter((r) => r.type === T.function);
            expect(Object.fromEntries(functions.map((r) => [inputs(r).name, unwrap<Record<string, unknown>>(inputs(r).serviceConfig).ingressSettings]))).toEqual({
                "b24-token-refresh": "ALLOW_INTERNAL_ONLY",
                "b24-oauth-callback": "ALLOW_ALL",
            });
            const publicGrants = on.records.filter((r) => /allUsers|allAuthenticatedUsers/.test(JSON.stringify(inputs(r))));
            expect(publicGrants.map((r) => ({ type: r.type, ...inputs(r) }))).toEqual([
                { type: T.runInvoker, project, location: region, name: "b24-oauth-callback", role: "roles/run.invoker", member: "allUsers" },
            ]);
        });

        it("changes no other resource's exposure, and no other resource's inputs but the failure metric and alert", () => {
            const added = new Set([`${T.function}::b24-callback-function`, `${T.runInvoker}::b24-public-invokes-callback`]);
            const kept = on.records.filter((r) => !added.has(key(r)));
            expect(exposure(kept)).toEqual(exposure(off.records));
            expect(Object.keys(exposure(off.records)).length).toBeGreaterThan(8);

            const offInputs = new Map(off.records.map((r) => [key(r), inputs(r)]));
            const changed = kept.filter((r) => JSON.stringify(inputs(r)) !== JSON.stringify(offInputs.get(key(r)))).map((r) => r.name);
            expect(changed.sort()).toEqual(["b24-failure-alert", "b24-failure-metric"]);
        });

        it("runs the bundle's oauthCallback entry point from the refresher's very source object", () => {
            const fn = inputs(callbackRecord());
            const refresher = inputs(on.records.find((r) => r.type === T.function && inputs(r).name === "b24-token-refresh")!);
            expect(fn).toMatchObject({ project, location: region, name: "b24-oauth-callback" });
            expect(fn.buildConfig).toEqual({ ...refresher.buildConfig, entryPoint: "oauthCallback" });
            expect(fn.buildConfig.source.storageSource.object).toBe(`b24-token-refresh/${"c".repeat(64)}.zip`);
            expect(fn.eventTrigger).toBeUndefined();
            const service = unwrap<Record<string, any>>(fn.serviceConfig);
            expect(service).toMatchObject({
                minInstanceCount: 0,
                maxInstanceCount: 2,
                maxInstanceRequestConcurrency: 1,
                timeoutSeconds: 60,
                availableMemory: "256Mi",
                ingressSettings: "ALLOW_ALL",
                serviceAccountEmail: runtimeEmail,
            });
            expect(service.environmentVariables).toEqual({
                PROJECT_ID: project,
                ACCESS_TOKEN_SECRET: "b24-access-token",
                REFRESH_TOKEN_SECRET: "b24-refresh-token",
                B24_OAUTH_TOKEN_URL: "https://oauth.bitrix.info/oauth/token/",
                B24_PORTAL_DOMAIN: portalDomain,
                B24_MEMBER_ID: memberId,
            });
            expect(service.secretEnvironmentVariables).toEqual(unwrap<Record<string, any>>(refresher.serviceConfig).secretEnvironmentVariables);
        });

        it("outputs the function's URL", async () => {
            expect(await promiseOf(on.exports.callbackUrl as pulumi.Output<string>)).toBe(`https://${region}-${project}.cloudfunctions.net/b24-oauth-callback`);
        });

        it("outputs the authorize URL with the callback's state, as a secret", async () => {
            const url = on.exports.authorizeUrl as pulumi.Output<string>;
            expect(await pulumi.isSecret(url)).toBe(true);
            const state = callbackState({ clientId, clientSecret: plainClientSecret, portalDomain });
            expect(await promiseOf(url)).toBe(`${authorizeUrl(portalDomain, clientId)}&state=${state}`);
            for (const [name, value] of Object.entries(on.exports)) {
                if (!pulumi.Output.isInstance(value) || (await pulumi.isSecret(value))) continue;
                expect(JSON.stringify(await promiseOf(value)), name).not.toContain(state);
            }
            expect(everyString(on.records).filter((s) => s.includes(state))).toEqual([]);
            for (const r of on.records) expect(plainStrings(r.inputs).filter((s) => s.includes(plainClientSecret)), r.name).toEqual([]);
        });

        it("counts the callback's error lines as failures, and alerts on no refused request", () => {
            const metric = inputs(on.records.find((r) => r.name === "b24-failure-metric")!);
            expect(metric.filter).toBe(
                'resource.type="cloud_run_revision" AND (resource.labels.service_name="b24-token-refresh" OR resource.labels.service_name="b24-oauth-callback") AND severity>=ERROR',
            );
            const alert = inputs(on.records.find((r) => r.name === "b24-failure-alert")!);
            expect(alert.documentation.content).toContain("`authorize.failed`");
            const success = inputs(on.records.find((r) => r.name === "b24-success-metric")!);
            expect(success.filter).not.toContain("b24-oauth-callback");
            expect(everyString(on.records).filter((s) => s.includes("authorize.refused"))).toEqual([]);
        });
    });
});
