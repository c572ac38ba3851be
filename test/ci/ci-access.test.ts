// The optional CI part of the stack under Pulumi mocks: nothing at all without `githubRepository`;
// with it, a provider that admits only that repository's tokens, a deployer with exactly the
// listed roles (never owner/editor) that only that repository may impersonate; bad settings fail
// with the key and the `pulumi config set` that fixes them, before any resource exists.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import {
    CiAccess,
    type CiAccessArgs,
    CiConfigError,
    ciAccessFromConfig,
    ciApis,
    ciConfigKeys,
    ciOffOutput,
    deployerGrantableProjectRoles,
    deployerRoles,
    forbiddenDeployerRoles,
    githubAttributeCondition,
    githubRepositoryProblem,
    githubRepositorySuggestion,
    parseCiConfig,
} from "../../infra/ci-access";
import { buildAccountProjectRoles } from "../../infra/iam";
import { createMocks, projectName, promiseOf, type ResourceRecord, repoRoot, settle, unwrap } from "../infra/helpers";

const project = "my-gcp-project";
const projectNumber = "123456789012";
const repository = "acme/b24-token-rotation";

const types = {
    pool: "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
    provider: "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
    account: "gcp:serviceaccount/account:Account",
    accountIam: "gcp:serviceaccount/iAMMember:IAMMember",
    projectIam: "gcp:projects/iAMMember:IAMMember",
    service: "gcp:projects/service:Service",
};

/** The shared infra mocks, plus the full names Google gives a pool and a provider. */
function ciMocks(records: ResourceRecord[]): pulumi.runtime.Mocks {
    const base = createMocks(records);
    return {
        async newResource(args) {
            const result = await base.newResource(args);
            const inputs = args.inputs as Record<string, unknown>;
            const pool = `projects/${projectNumber}/locations/global/workloadIdentityPools/${String(unwrap(inputs.workloadIdentityPoolId))}`;
            if (args.type === types.pool) return { id: pool, state: { ...result.state, name: pool } };
            if (args.type === types.provider) {
                const name = `${pool}/providers/${String(unwrap(inputs.workloadIdentityPoolProviderId))}`;
                return { id: name, state: { ...result.state, name } };
            }
            return result;
        },
        call: (args) => base.call(args),
    };
}

let records: ResourceRecord[] = [];
beforeEach(async () => {
    records = [];
    await pulumi.runtime.setMocks(ciMocks(records), projectName, "dev", false);
});

function source(values: Record<string, string>): { get(key: string): string | undefined } {
    return { get: (key) => values[key] };
}
function ofType(type: string): ResourceRecord[] {
    return records.filter((r) => r.type === type);
}
function only(type: string): ResourceRecord {
    const found = ofType(type);
    expect(found, type).toHaveLength(1);
    return found[0]!;
}
const input = <T = string>(record: ResourceRecord, key: string) => unwrap<T>(record.inputs[key]);

async function deploy(args: Partial<CiAccessArgs> = {}, name = "b24-ci"): Promise<CiAccess> {
    const ci = new CiAccess(name, { project, githubRepository: repository, ...args });
    await promiseOf(ci.repositoryVariables);
    await settle();
    return ci;
}

/**
 * Evaluates a provider condition of the form `assertion.a == "x" && assertion.b == "y"` against a
 * token's claims, as CEL does: exact, case-sensitive string equality. Anything else is refused.
 */
function admits(condition: string, claims: Record<string, string>): boolean {
    return condition.split(" && ").every((clause) => {
        const match = /^assertion\.(\w+) == ("(?:[^"\\]|\\.)*")$/.exec(clause);
        if (!match) throw new Error(`unsupported clause in the test's evaluator: ${clause}`);
        return claims[match[1]!] === JSON.parse(match[2]!);
    });
}

describe("off by default", () => {
    it("creates no resource at all when githubRepository is unset or blank", async () => {
        expect(ciAccessFromConfig(source({}), { project })).toBeUndefined();
        expect(ciAccessFromConfig(source({ githubRepository: "  " }), { project })).toBeUndefined();
        await settle();
        expect(records).toEqual([]);
    });

    it("creates the CI part when githubRepository is set", async () => {
        const ci = ciAccessFromConfig(source({ githubRepository: repository }), { project });
        expect(ci).toBeInstanceOf(CiAccess);
        await promiseOf(ci!.repositoryVariables);
        await settle();
        expect(records.find((r) => r.type === CiAccess.type)?.name).toBe("b24-ci");
        only(types.pool);
        only(types.provider);
    });

    it("says how to switch it on where the stack would show its outputs", () => {
        expect(ciOffOutput).toContain("pulumi config set githubRepository owner/repo");
    });

    it("reads exactly the keys it declares", () => {
        const asked: string[] = [];
        parseCiConfig({
            get: (key) => {
                asked.push(key);
                return undefined;
            },
        });
        expect(asked.sort()).toEqual([...ciConfigKeys].sort());
    });
});

describe("invalid settings", () => {
    it.each([
        ["not a repo", "owner/repo"],
        ["acme", "owner/repo"],
        ["acme/b24/extra", "owner/repo"],
        ["-acme/b24", "owner/repo"],
        ["https://github.com/acme/b24-token-rotation", "acme/b24-token-rotation"],
        ["git@github.com:acme/b24-token-rotation.git", "acme/b24-token-rotation"],
        ["acme/b24-token-rotation.git", "acme/b24-token-rotation"],
    ])("rejects githubRepository %j with the fix, before creating anything", async (value, suggestion) => {
        let error: unknown;
        try {
            ciAccessFromConfig(source({ githubRepository: value }), { project });
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(CiConfigError);
        expect(error).toBeInstanceOf(pulumi.RunError);
        const message = (error as Error).message;
        expect(message).toContain("githubRepository:");
        expect(message).toContain(`fix: pulumi config set githubRepository ${suggestion}`);
        await settle();
        expect(records).toEqual([]);
    });

    it("rejects non-numeric GitHub ids, and ids without a repository", () => {
        expect(() => parseCiConfig(source({ githubRepository: repository, githubRepositoryOwnerId: "acme" }))).toThrow(
            /githubRepositoryOwnerId: "acme" is not a numeric GitHub id\n {4}fix: pulumi config set githubRepositoryOwnerId "\$\(gh api repos\/acme\/b24-token-rotation --jq '\.owner\.id'\)"/,
        );
        expect(() => parseCiConfig(source({ githubRepositoryId: "2002" }))).toThrow(/githubRepositoryId: is set but githubRepository is not.*\n {4}fix: pulumi config set githubRepository owner\/repo/);
    });

    it("refuses bad component arguments before creating any child", async () => {
        expect(() => new CiAccess("bad", { project, githubRepository: "acme" })).toThrow(/githubRepository: .*\n {4}fix: pulumi config set githubRepository owner\/repo/);
        expect(() => new CiAccess("bad", { project, githubRepository: "" })).toThrow(/githubRepository: is required/);
        expect(() => new CiAccess("bad", { project: "X", githubRepository: repository })).toThrow(/project: "X"/);
        expect(() => new CiAccess("bad", { project, githubRepository: repository, namePrefix: "Way-Too-Long-Prefix" })).toThrow(/namePrefix:/);
        await settle();
        expect(records).toEqual([]);
    });

    it("accepts what GitHub accepts", () => {
        for (const ok of ["acme/b24-token-rotation", "a/b", "Octo-Org/repo.name_1", "acme/.github"]) expect(githubRepositoryProblem(ok), ok).toBeUndefined();
        expect(githubRepositorySuggestion("https://github.com/acme/b24/")).toBe("acme/b24");
    });
});

describe("the identity provider", () => {
    it("trusts GitHub's issuer and admits only tokens of the configured repository", async () => {
        await deploy();
        const provider = only(types.provider);
        expect(input<{ issuerUri: string }>(provider, "oidc")).toEqual({ issuerUri: "https://token.actions.githubusercontent.com" });
        const condition = input(provider, "attributeCondition");
        expect(condition).toBe(`assertion.repository == "${repository}"`);
        expect(admits(condition, { repository })).toBe(true);
        for (const other of ["acme/b24-token-rotation-fork", "mallory/b24-token-rotation", "acme/other", "ACME/B24-TOKEN-ROTATION", "", "acme/b24-token-rotation "]) {
            expect(admits(condition, { repository: other }), other).toBe(false);
        }
        const mapping = input<Record<string, string>>(provider, "attributeMapping");
        expect(mapping["google.subject"]).toBe("assertion.sub");
        expect(mapping["attribute.repository"]).toBe("assertion.repository");
        expect(mapping["attribute.repository_owner_id"]).toBe("assertion.repository_owner_id");
        expect(mapping["attribute.repository_id"]).toBe("assertion.repository_id");
        expect(input(provider, "workloadIdentityPoolId")).toBe(input(only(types.pool), "workloadIdentityPoolId"));
    });

    it("pins the owner and repository ids when given, so a re-created namesake is refused", () => {
        const condition = githubAttributeCondition({ githubRepository: repository, githubRepositoryOwnerId: "1001", githubRepositoryId: "2002" });
        expect(admits(condition, { repository, repository_owner_id: "1001", repository_id: "2002" })).toBe(true);
        expect(admits(condition, { repository, repository_owner_id: "9999", repository_id: "2002" })).toBe(false);
        expect(admits(condition, { repository, repository_owner_id: "1001", repository_id: "9999" })).toBe(false);
        expect(admits(condition, { repository: "mallory/x", repository_owner_id: "1001", repository_id: "2002" })).toBe(false);
    });

    it("enables the APIs keyless CI needs and never disables them on destroy", async () => {
        await deploy();
        const services = ofType(types.service);
        expect(services.map((s) => input(s, "service")).sort()).toEqual([...ciApis].sort());
        for (const s of services) expect(input<boolean>(s, "disableOnDestroy")).toBe(false);
    });
});

describe("the deployer", () => {
    it("holds exactly the listed roles, never a basic role", async () => {
        const ci = await deploy();
        const email = await promiseOf(ci.serviceAccountEmail);
        const grants = ofType(types.projectIam);
        expect(grants.every((g) => input(g, "member") === `serviceAccount:${email}`)).toBe(true);
        const roles = grants.map((g) => input(g, "role"));
        expect(roles.sort()).toEqual(deployerRoles.map((r) => r.role).sort());
        for (const forbidden of [...forbiddenDeployerRoles, "roles/iam.securityAdmin", "roles/resourcemanager.organizationAdmin"]) {
            expect(roles).not.toContain(forbidden);
        }
        expect(new Set(roles).size).toBe(roles.length);
    });

    it("may grant or revoke at project level only the stack's own project roles", async () => {
        await deploy();
        const iamAdmin = ofType(types.projectIam).find((g) => input(g, "role") === "roles/resourcemanager.projectIamAdmin")!;
        const condition = input<{ expression: string }>(iamAdmin, "condition");
        expect(condition.expression).toBe("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/cloudbuild.builds.builder'])");
        expect([...deployerGrantableProjectRoles].sort()).toEqual([...buildAccountProjectRoles].sort());
        const unconditioned = ofType(types.projectIam).filter((g) => input(g, "condition") === undefined);
        expect(unconditioned).toHaveLength(deployerRoles.length - 1);
    });

    it("gives each role a one-line reason and the resources it is for", () => {
        for (const r of deployerRoles) {
            expect(r.role).toMatch(/^roles\/[a-zA-Z]+\.[a-zA-Z]+$/);
            expect(r.reason.length).toBeGreaterThan(10);
            expect(r.reason).not.toContain("\n");
            expect(r.resources.length).toBeGreaterThan(0);
        }
    });

    it("covers every kind of resource the stack's program creates", () => {
        const infraDir = path.join(repoRoot, "infra");
        const created = new Set<string>();
        for (const file of fs.readdirSync(infraDir).filter((f) => f.endsWith(".ts"))) {
            for (const match of fs.readFileSync(path.join(infraDir, file), "utf8").matchAll(/new (gcp\.[a-zA-Z0-9]+\.[A-Za-z0-9]+)\(/g)) created.add(match[1]!);
        }
        const covered = new Set(deployerRoles.flatMap((r) => r.resources));
        expect([...created].filter((c) => !covered.has(c)).sort(), "resource kinds no deployer role covers").toEqual([]);
        expect(created.has("gcp.iam.WorkloadIdentityPoolProvider")).toBe(true);
    });

    it("may be impersonated by runs of the configured repository only", async () => {
        const ci = await deploy();
        const binding = only(types.accountIam);
        const deployer = only(types.account);
        expect(input(binding, "role")).toBe("roles/iam.workloadIdentityUser");
        expect(input(binding, "serviceAccountId")).toBe(`projects/${project}/serviceAccounts/b24-deployer@${project}.iam.gserviceaccount.com`);
        expect(input(deployer, "accountId")).toBe("b24-deployer");
        expect(input(binding, "member")).toBe(
            `principalSet://iam.googleapis.com/projects/${projectNumber}/locations/global/workloadIdentityPools/b24-github/attribute.repository/${repository}`,
        );
        const members = records.map((r) => unwrap(r.inputs.member)).filter((m): m is string => typeof m === "string");
        expect(members.filter((m) => m.startsWith("principal")), "no other external principal anywhere").toHaveLength(1);
        expect(members.some((m) => m.includes("/*") || m === "allUsers" || m === "allAuthenticatedUsers")).toBe(false);
        expect(await promiseOf(ci.repositoryVariables)).toEqual({
            GCP_WORKLOAD_IDENTITY_PROVIDER: `projects/${projectNumber}/locations/global/workloadIdentityPools/b24-github/providers/b24-github-actions`,
            GCP_SERVICE_ACCOUNT: `b24-deployer@${project}.iam.gserviceaccount.com`,
        });
    });
});

describe("as a component", () => {
    it("parents every child to itself and names them from its name, so two instances never collide", async () => {
        const parents = new Map<string, string | undefined>();
        const capture: pulumi.ResourceTransformation = (args) => {
            parents.set(args.name, args.opts.parent ? "set" : undefined);
            return undefined;
        };
        const a = new CiAccess("ci-a", { project, githubRepository: repository, namePrefix: "a" }, { transformations: [capture] });
        const b = new CiAccess("ci-b", { project, githubRepository: "acme/other", namePrefix: "b" });
        await Promise.all([promiseOf(a.repositoryVariables), promiseOf(b.repositoryVariables)]);
        await settle();
        const children = records.filter((r) => r.type !== CiAccess.type);
        expect(children.filter((r) => r.name.startsWith("ci-a-"))).toHaveLength(children.length / 2);
        expect(children.filter((r) => r.name.startsWith("ci-b-"))).toHaveLength(children.length / 2);
        for (const [name, parent] of parents) if (name !== "ci-a") expect(parent, name).toBe("set");
        expect(ofType(types.pool).map((p) => input(p, "workloadIdentityPoolId")).sort()).toEqual(["a-github", "b-github"]);
    });
});

describe("README", () => {
    const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const section = /<!-- cd:start -->([\s\S]*?)<!-- cd:end -->/.exec(readme)?.[1] ?? "";

    it("comes after the Deploy section it builds on", () => {
        expect(section).not.toBe("");
        expect(readme.indexOf("<!-- deploy:end -->")).toBeLessThan(readme.indexOf("<!-- cd:start -->"));
    });

    it("lists exactly the deployer roles, each with its reason", () => {
        const listed = [...section.matchAll(/^\| `(roles\/[^`]+)` \| (.+?) \|$/gm)].map((m) => ({ role: m[1]!, reason: m[2]! }));
        expect(listed.map((r) => r.role)).toEqual(deployerRoles.map((r) => r.role));
        for (const r of deployerRoles) {
            const row = listed.find((l) => l.role === r.role)!;
            expect(row.reason).toContain(r.reason);
        }
        expect(section).toContain(deployerRoles.find((r) => r.condition)!.condition!.expression);
    });

    it("names every variable and secret the workflow reads, and the one-time setup", () => {
        const workflowText = fs
            .readdirSync(path.join(repoRoot, ".github", "workflows"))
            .map((f) => fs.readFileSync(path.join(repoRoot, ".github", "workflows", f), "utf8"))
            .join("\n");
        const names = new Set([...workflowText.matchAll(/\$\{\{\s*(?:vars|secrets)\.([A-Z_]+)/g)].map((m) => m[1]!));
        expect(names.size).toBeGreaterThan(3);
        for (const name of names) expect(section, name).toContain(name);
        expect(section).toContain("pulumi config set githubRepository");
        expect(section).toContain("pulumi up");
        expect(section).toContain("ciWorkloadIdentityProvider");
        expect(section).toContain("ciServiceAccount");
    });
});
