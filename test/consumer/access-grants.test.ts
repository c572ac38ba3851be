// The grant helper under Pulumi mocks: a consumer gets secretAccessor (and viewer, for the version
// lookup) on the access-token secret alone, never on the refresh token or the client credentials.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createMocks, ofType, projectName, promiseOf, settle, unwrap, type ResourceRecord } from "../infra/helpers";

const project = "my-gcp-project";
const secretIam = "gcp:secretmanager/secretIamMember:SecretIamMember";
const records: ResourceRecord[] = [];

type Gcp = typeof import("@pulumi/gcp");
type Grants = typeof import("../../infra/access-grants");
let gcp: Gcp;
let grants: Grants;

beforeAll(async () => {
    await pulumi.runtime.setMocks(createMocks(records), projectName, "dev", false);
    // Import after the mocks are in place, as the Pulumi host would load the program.
    gcp = await import("@pulumi/gcp");
    grants = await import("../../infra/access-grants");
});

beforeEach(() => {
    records.length = 0;
});

function tokenSecrets() {
    const secret = (role: string, secretId: string) => new gcp.secretmanager.Secret(`b24-${role}-secret`, { project, secretId, replication: { auto: {} } });
    return {
        access: secret("access-token", "b24-access-token"),
        refresh: secret("refresh-token", "b24-refresh-token"),
        clientSecret: secret("client-secret", "b24-client-secret"),
    };
}

describe("grantAccessTokenReader", () => {
    it("binds secretAccessor and viewer on the access-token secret, and nothing else", async () => {
        const secrets = tokenSecrets();
        const account = new gcp.serviceaccount.Account("orders-api", { project, accountId: "orders-api" });
        const grant = grants.grantAccessTokenReader("orders-api", { secret: secrets.access, member: account.member });
        await settle();
        const bindings = ofType(records, secretIam).map((r) => ({
            name: r.name,
            project: unwrap(r.inputs.project),
            secretId: unwrap(r.inputs.secretId),
            role: unwrap(r.inputs.role),
            member: unwrap(r.inputs.member),
        }));
        const member = `serviceAccount:orders-api@${project}.iam.gserviceaccount.com`;
        expect(bindings).toEqual([
            { name: "orders-api-reads-access-token", project, secretId: "b24-access-token", role: "roles/secretmanager.secretAccessor", member },
            { name: "orders-api-views-access-token", project, secretId: "b24-access-token", role: "roles/secretmanager.viewer", member },
        ]);
        // Only IAM bindings are created, and none at project level.
        expect(records.filter((r) => r.type.includes("IAM") || r.type.includes("Iam")).map((r) => r.type)).toEqual([secretIam, secretIam]);
        expect(await promiseOf(grant.accessor.role)).toBe("roles/secretmanager.secretAccessor");
    });

    it("passes resource options through (a parent component, for TokenRotation's method)", async () => {
        const secrets = tokenSecrets();
        const parent = new pulumi.ComponentResource("test:index:Parent", "rotation");
        const grant = grants.grantAccessTokenReader("billing", { secret: secrets.access, member: "serviceAccount:billing@x.iam.gserviceaccount.com" }, { parent });
        await settle();
        expect(await promiseOf(grant.viewer.urn)).toContain("test:index:Parent$gcp:secretmanager/secretIamMember:SecretIamMember::billing-views-access-token");
    });

    it("refuses the refresh-token and client-credential secrets (checked on the secret id when it resolves)", () => {
        expect(grants.readerSecretProblem("b24-refresh-token")).toMatch(/"b24-refresh-token" is not the access-token secret/);
        expect(grants.readerSecretProblem("shop-client-secret")).toMatch(/not the access-token secret/);
        expect(grants.readerSecretProblem("shop-client-id")).toMatch(/not the access-token secret/);
        expect(grants.readerSecretProblem("b24-access-token")).toBeUndefined();
        expect(grants.readerSecretProblem("shop-access-token")).toBeUndefined();
    });

    it("rejects a member that is not an identity, or is everyone, before creating anything", () => {
        const secrets = tokenSecrets();
        records.length = 0;
        expect(() => grants.grantAccessTokenReader("x", { secret: secrets.access, member: "orders@x.iam.gserviceaccount.com" })).toThrow(/must be an IAM member/);
        expect(() => grants.grantAccessTokenReader("x", { secret: secrets.access, member: "allUsers" })).toThrow(/public/);
        expect(() => grants.grantAccessTokenReader("x y", { secret: secrets.access, member: "user:a@b.c" })).toThrow(/name "x y"/);
        expect(records).toEqual([]);
    });
});
