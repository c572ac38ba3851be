// Optional CI access: lets GitHub Actions of one repository deploy this stack without a key. A
// Workload Identity pool and provider accept only that repository's OIDC tokens; a deployer
// service account holds only the roles a `pulumi up` of this stack needs, and only principals of
// that repository may impersonate it. Off unless the stack sets `githubRepository`.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";

/** A predefined role the deployer holds on the project, and the resources of this stack it is for. */
export interface DeployerRole {
    role: string;
    /** One line: why a `pulumi up` of this stack needs it. */
    reason: string;
    /** The `gcp.*` resource classes (as written in infra/) whose create, update or delete needs this role. */
    resources: readonly string[];
    /** Set when the grant is narrowed by an IAM condition. */
    condition?: { title: string; description: string; expression: string };
}

/**
 * The only roles the deployer may grant or revoke at project level: the build account's roles
 * (`buildAccountProjectRoles` in iam.ts; a test keeps the two lists equal).
 */
export const deployerGrantableProjectRoles = ["roles/cloudbuild.builds.builder"] as const;

/** `api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])` limited to `roles`. */
export function grantLimitExpression(roles: readonly string[]): string {
    return `api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${roles.map((r) => `'${r}'`).join(", ")}])`;
}

/**
 * Every role the CI deployer holds, each justified by a resource the stack creates. No basic role
 * (owner, editor, viewer). The README's table and the tests read this list.
 */
export const deployerRoles: readonly DeployerRole[] = [
    {
        role: "roles/serviceusage.serviceUsageAdmin",
        reason: "enables the APIs the stack uses and looks up the Pub/Sub service agent",
        resources: ["gcp.projects.Service", "gcp.projects.ServiceIdentity"],
    },
    {
        role: "roles/secretmanager.admin",
        reason: "creates the four secrets and the client id/secret versions, and binds the refresher's secret-level roles",
        resources: ["gcp.secretmanager.Secret", "gcp.secretmanager.SecretVersion", "gcp.secretmanager.SecretIamMember"],
    },
    {
        role: "roles/iam.serviceAccountAdmin",
        reason: "creates the runtime, trigger and build service accounts and sets IAM on them (Pub/Sub agent as token creator)",
        resources: ["gcp.serviceaccount.Account", "gcp.serviceaccount.IAMMember"],
    },
    {
        role: "roles/iam.serviceAccountUser",
        reason: "deploys the function to run as the runtime account, build as the build account and trigger as the trigger account",
        resources: ["gcp.cloudfunctionsv2.Function"],
    },
    {
        role: "roles/iam.roleAdmin",
        reason: "creates the refresher's custom role (exactly the Secret Manager permissions it calls)",
        resources: ["gcp.projects.IAMCustomRole"],
    },
    {
        role: "roles/resourcemanager.projectIamAdmin",
        reason: "grants the build account its project role; an IAM condition lets it grant or revoke no other role",
        resources: ["gcp.projects.IAMMember"],
        condition: {
            title: "only the stack's own project grants",
            description: "May grant or revoke only the roles the b24-token-rotation stack binds at project level.",
            expression: grantLimitExpression(deployerGrantableProjectRoles),
        },
    },
    {
        role: "roles/storage.admin",
        reason: "creates the private source bucket and uploads the content-hashed bundle",
        resources: ["gcp.storage.Bucket", "gcp.storage.BucketObject"],
    },
    {
        role: "roles/cloudfunctions.developer",
        reason: "creates and redeploys the gen2 refresher function, and the OAuth callback function when callback is on",
        resources: ["gcp.cloudfunctionsv2.Function"],
    },
    {
        role: "roles/eventarc.admin",
        reason: "creates the function's Pub/Sub Eventarc trigger with the trigger service account",
        resources: ["gcp.cloudfunctionsv2.Function"],
    },
    {
        role: "roles/run.admin",
        reason: "grants the trigger account run.invoker on the refresher's Cloud Run service and, when callback is on, allUsers run.invoker on the callback's (run.services.setIamPolicy)",
        resources: ["gcp.cloudrunv2.ServiceIamMember"],
    },
    {
        role: "roles/pubsub.editor",
        reason: "creates the trigger topic",
        resources: ["gcp.pubsub.Topic"],
    },
    {
        role: "roles/cloudscheduler.admin",
        reason: "creates the scheduler job that publishes the tick",
        resources: ["gcp.cloudscheduler.Job"],
    },
    {
        role: "roles/logging.configWriter",
        reason: "creates the log-based failure and success metrics",
        resources: ["gcp.logging.Metric"],
    },
    {
        role: "roles/monitoring.alertPolicyEditor",
        reason: "creates the failure and missing-refresh alert policies",
        resources: ["gcp.monitoring.AlertPolicy"],
    },
    {
        role: "roles/monitoring.notificationChannelEditor",
        reason: "creates the e-mail notification channel when alertEmail is set",
        resources: ["gcp.monitoring.NotificationChannel"],
    },
    {
        role: "roles/iam.workloadIdentityPoolViewer",
        reason: "reads this CI pool and provider on refresh; changing them stays with a project owner, so CI cannot widen its own access",
        resources: ["gcp.iam.WorkloadIdentityPool", "gcp.iam.WorkloadIdentityPoolProvider"],
    },
];

/** Roles the deployer must never hold. */
export const forbiddenDeployerRoles = ["roles/owner", "roles/editor", "roles/viewer"] as const;

/** APIs that keyless authentication from GitHub needs on top of the stack's own. */
export const ciApis = [
    "iam.googleapis.com", // the Workload Identity pool and provider
    "iamcredentials.googleapis.com", // google-github-actions/auth mints the deployer's access token
    "sts.googleapis.com", // exchanges the GitHub OIDC token for a federated token
    "cloudresourcemanager.googleapis.com", // the deployer's project-level grants
] as const;

/** GitHub Actions' OIDC issuer. */
export const githubOidcIssuer = "https://token.actions.githubusercontent.com";

/** Claims of the GitHub token mapped to attributes (available in bindings and audit logs). */
export const githubAttributeMapping: Readonly<Record<string, string>> = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.repository_id": "assertion.repository_id",
    "attribute.repository_owner_id": "assertion.repository_owner_id",
    "attribute.ref": "assertion.ref",
    "attribute.event_name": "assertion.event_name",
    "attribute.actor": "assertion.actor",
};

/** The stack config keys this file reads (bare keys of the project namespace). */
export const ciConfigKeys = ["githubRepository", "githubRepositoryOwnerId", "githubRepositoryId"] as const;
export type CiConfigKey = (typeof ciConfigKeys)[number];

const ownerPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$/;
const repoPattern = /^[A-Za-z0-9._-]{1,100}$/;
const numericIdPattern = /^[1-9][0-9]{0,19}$/;

/** Why `value` is not a GitHub `owner/repo`, or undefined. */
export function githubRepositoryProblem(value: string): string | undefined {
    const parts = value.split("/");
    if (parts.length === 2) {
        const [owner, repo] = parts as [string, string];
        if (ownerPattern.test(owner) && repoPattern.test(repo) && repo !== "." && repo !== ".." && !repo.endsWith(".git")) return undefined;
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.startsWith("git@")) {
        return `"${value}" is a URL: give the repository as owner/repo, exactly as GitHub shows it`;
    }
    return `"${value}" is not a GitHub repository such as octo-org/b24-token-rotation (owner/repo)`;
}

/** Best guess at the `owner/repo` the user meant (`https://github.com/a/b.git` → `a/b`), or the placeholder. */
export function githubRepositorySuggestion(value: string): string {
    const trimmed = value
        .trim()
        .replace(/^(?:[a-z][a-z0-9+.-]*:\/\/)?(?:[^/@]+@)?github\.com[/:]/i, "")
        .replace(/\.git$/, "")
        .replace(/\/+$/, "");
    return githubRepositoryProblem(trimmed) ? "owner/repo" : trimmed;
}

/** One problem with the CI settings: key, what is wrong, the command that fixes it. */
export interface CiConfigProblem {
    key: CiConfigKey;
    problem: string;
    fix: string;
}

/** Invalid CI settings. A RunError, so `pulumi preview` prints the message without a stack trace. */
export class CiConfigError extends pulumi.RunError {
    constructor(readonly problems: CiConfigProblem[]) {
        super(
            [
                `Invalid stack configuration (${problems.length} ${problems.length === 1 ? "problem" : "problems"}):`,
                ...problems.map((p) => `  - ${p.key}: ${p.problem}\n    fix: ${p.fix}`),
            ].join("\n"),
        );
        this.name = "CiConfigError";
    }
}

/** The validated CI settings of a stack. */
export interface CiSettings {
    githubRepository: string;
    githubRepositoryOwnerId?: string;
    githubRepositoryId?: string;
}

/** Where CI settings come from: `new pulumi.Config()` in a real run, a plain map in tests. */
export interface CiConfigSource {
    get(key: string): string | undefined;
}

/**
 * Reads the CI settings: undefined when `githubRepository` is unset (CI access is off), the
 * validated settings otherwise; throws one {@link CiConfigError} listing every problem.
 */
export function parseCiConfig(source: CiConfigSource): CiSettings | undefined {
    const read = (key: CiConfigKey) => {
        const value = source.get(key)?.trim();
        return value ? value : undefined;
    };
    const githubRepository = read("githubRepository");
    const githubRepositoryOwnerId = read("githubRepositoryOwnerId");
    const githubRepositoryId = read("githubRepositoryId");
    const problems: CiConfigProblem[] = [];
    if (!githubRepository) {
        for (const [key, value] of [
            ["githubRepositoryOwnerId", githubRepositoryOwnerId],
            ["githubRepositoryId", githubRepositoryId],
        ] as const) {
            if (value !== undefined) {
                problems.push({ key, problem: "is set but githubRepository is not, so CI access is off", fix: "pulumi config set githubRepository owner/repo" });
            }
        }
        if (problems.length > 0) throw new CiConfigError(problems);
        return undefined;
    }
    const repoProblem = githubRepositoryProblem(githubRepository);
    if (repoProblem) {
        problems.push({ key: "githubRepository", problem: repoProblem, fix: `pulumi config set githubRepository ${githubRepositorySuggestion(githubRepository)}` });
    }
    for (const [key, value, what] of [
        ["githubRepositoryOwnerId", githubRepositoryOwnerId, ".owner.id"],
        ["githubRepositoryId", githubRepositoryId, ".id"],
    ] as const) {
        if (value !== undefined && !numericIdPattern.test(value)) {
            problems.push({
                key,
                problem: `"${value}" is not a numeric GitHub id`,
                fix: `pulumi config set ${key} "$(gh api repos/${repoProblem ? "owner/repo" : githubRepository} --jq '${what}')"`,
            });
        }
    }
    if (problems.length > 0) throw new CiConfigError(problems);
    return { githubRepository, githubRepositoryOwnerId, githubRepositoryId };
}

/**
 * The provider's attribute condition: only tokens of this repository (and, when given, of this
 * owner id and repository id, which survive renames and cannot be re-registered by someone else).
 */
export function githubAttributeCondition(settings: CiSettings): string {
    const clauses = [`assertion.repository == ${JSON.stringify(settings.githubRepository)}`];
    if (settings.githubRepositoryOwnerId) clauses.push(`assertion.repository_owner_id == ${JSON.stringify(settings.githubRepositoryOwnerId)}`);
    if (settings.githubRepositoryId) clauses.push(`assertion.repository_id == ${JSON.stringify(settings.githubRepositoryId)}`);
    return clauses.join(" && ");
}

/** The principal set of every workflow run of `repository` in the pool named `poolName` (`projects/N/locations/global/workloadIdentityPools/ID`). */
export function repositoryPrincipalSet(poolName: string, repository: string): string {
    return `principalSet://iam.googleapis.com/${poolName}/attribute.repository/${repository}`;
}

export const defaultCiNamePrefix = "b24";
const namePrefixPattern = /^[a-z](?:[a-z0-9-]{0,12}[a-z0-9])?$/;

export interface CiAccessArgs {
    /** Google Cloud project id the stack deploys to. */
    project: string;
    /** The GitHub repository allowed to deploy, `owner/repo`, exactly as GitHub shows it. */
    githubRepository: string;
    /** Numeric id of the repository's owner (`gh api repos/OWNER/REPO --jq .owner.id`); pins the owner across renames. */
    githubRepositoryOwnerId?: string;
    /** Numeric id of the repository (`gh api repos/OWNER/REPO --jq .id`). */
    githubRepositoryId?: string;
    /** Prefix of the cloud names: pool `<prefix>-github`, provider `<prefix>-github-actions`, account `<prefix>-deployer`. Default `b24`. */
    namePrefix?: string;
}

/** Cloud ids derived from the prefix (pool and provider ids: 4-32 characters; account ids: 6-30). */
export function ciCloudNames(prefix: string): { poolId: string; providerId: string; deployerAccountId: string } {
    return { poolId: `${prefix}-github`, providerId: `${prefix}-github-actions`, deployerAccountId: `${prefix}-deployer` };
}

/** Checks every argument; throws one Error naming each bad argument and its fix. */
export function resolveCiAccessArgs(name: string, args: CiAccessArgs): Required<Pick<CiAccessArgs, "project" | "namePrefix">> & CiSettings {
    const problems: string[] = [];
    const namePrefix = args.namePrefix ?? defaultCiNamePrefix;
    if (!namePrefixPattern.test(namePrefix)) problems.push(`namePrefix: "${namePrefix}" must be 1-14 lowercase letters, digits or hyphens, starting with a letter`);
    if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(args.project ?? "")) problems.push(`project: "${args.project}" is not a Google Cloud project id`);
    let settings: CiSettings | undefined;
    try {
        const given: Partial<Record<string, string>> = {
            githubRepository: args.githubRepository,
            githubRepositoryOwnerId: args.githubRepositoryOwnerId,
            githubRepositoryId: args.githubRepositoryId,
        };
        settings = parseCiConfig({ get: (key) => given[key] });
        if (!settings) problems.push("githubRepository: is required\n    fix: pulumi config set githubRepository owner/repo");
    } catch (error) {
        if (!(error instanceof CiConfigError)) throw error;
        problems.push(...error.problems.map((p) => `${p.key}: ${p.problem}\n    fix: ${p.fix}`));
    }
    if (problems.length > 0 || !settings) {
        throw new Error(`CiAccess "${name}" has invalid arguments:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    }
    return { project: args.project, namePrefix, ...settings };
}

/** The repository variables the workflows read, with the values this stack created. */
export interface RepositoryVariables {
    GCP_WORKLOAD_IDENTITY_PROVIDER: string;
    GCP_SERVICE_ACCOUNT: string;
}

export class CiAccess extends pulumi.ComponentResource {
    public static readonly type = "b24-token-rotation:index:CiAccess";

    /** The repository allowed to deploy. */
    public readonly githubRepository: string;
    /** Full provider name, `projects/NUMBER/locations/global/workloadIdentityPools/ID/providers/ID`: the `GCP_WORKLOAD_IDENTITY_PROVIDER` variable. */
    public readonly workloadIdentityProvider: pulumi.Output<string>;
    /** The deployer's e-mail: the `GCP_SERVICE_ACCOUNT` variable. */
    public readonly serviceAccountEmail: pulumi.Output<string>;
    /** Both variables, ready to paste into the repository settings. */
    public readonly repositoryVariables: pulumi.Output<RepositoryVariables>;

    public readonly apis: gcp.projects.Service[];
    public readonly pool: gcp.iam.WorkloadIdentityPool;
    public readonly provider: gcp.iam.WorkloadIdentityPoolProvider;
    public readonly deployer: gcp.serviceaccount.Account;
    public readonly deployerGrants: gcp.projects.IAMMember[];
    public readonly workloadIdentityUser: gcp.serviceaccount.IAMMember;

    constructor(name: string, args: CiAccessArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const resolved = resolveCiAccessArgs(name, args);
        super(CiAccess.type, name, {}, opts);

        const { project, githubRepository } = resolved;
        const names = ciCloudNames(resolved.namePrefix);
        this.githubRepository = githubRepository;

        this.apis = ciApis.map(
            (service) =>
                // Enable an API keyless CI needs, and leave it enabled on destroy.
                new gcp.projects.Service(
                    `${name}-api-${service.split(".")[0]}`,
                    { project, service, disableOnDestroy: false, disableDependentServices: false },
                    { parent: this },
                ),
        );
        const childOpts: pulumi.CustomResourceOptions = { parent: this, dependsOn: this.apis };

        // Hold the GitHub Actions identities of this stack's CI.
        this.pool = new gcp.iam.WorkloadIdentityPool(
            `${name}-github-pool`,
            {
                project,
                workloadIdentityPoolId: names.poolId,
                displayName: `${resolved.namePrefix} GitHub Actions`,
                description: `GitHub Actions of ${githubRepository} (b24-token-rotation CI).`.slice(0, 256),
            },
            childOpts,
        );

        // Trust GitHub's OIDC tokens of this one repository, and no other.
        this.provider = new gcp.iam.WorkloadIdentityPoolProvider(
            `${name}-github-provider`,
            {
                project,
                workloadIdentityPoolId: this.pool.workloadIdentityPoolId,
                workloadIdentityPoolProviderId: names.providerId,
                displayName: "GitHub Actions OIDC",
                description: `Accepts only tokens of ${githubRepository}.`.slice(0, 256),
                attributeMapping: { ...githubAttributeMapping },
                attributeCondition: githubAttributeCondition(resolved),
                oidc: { issuerUri: githubOidcIssuer },
            },
            childOpts,
        );

        // Run `pulumi preview` and `pulumi up` from CI as a dedicated identity.
        this.deployer = new gcp.serviceaccount.Account(
            `${name}-deployer`,
            {
                project,
                accountId: names.deployerAccountId,
                displayName: `${resolved.namePrefix} CI deployer`,
                description: `Deploys b24-token-rotation from GitHub Actions of ${githubRepository}; impersonated through Workload Identity Federation only.`.slice(0, 256),
            },
            childOpts,
        );

        this.deployerGrants = deployerRoles.map(
            (grant) =>
                // Give the deployer one role the stack's resources need (see deployerRoles for why).
                new gcp.projects.IAMMember(
                    `${name}-deployer-${grant.role.split("/")[1]!.replace(/\./g, "-").toLowerCase()}`,
                    { project, role: grant.role, member: this.deployer.member, condition: grant.condition && { ...grant.condition } },
                    childOpts,
                ),
        );

        // Let workflow runs of this repository, and only of it, impersonate the deployer.
        this.workloadIdentityUser = new gcp.serviceaccount.IAMMember(
            `${name}-deployer-workload-identity-user`,
            {
                serviceAccountId: this.deployer.name,
                role: "roles/iam.workloadIdentityUser",
                member: this.pool.name.apply((poolName) => repositoryPrincipalSet(poolName, githubRepository)),
            },
            childOpts,
        );

        this.workloadIdentityProvider = this.provider.name;
        this.serviceAccountEmail = this.deployer.email;
        this.repositoryVariables = pulumi
            .all([this.provider.name, this.deployer.email])
            .apply(([provider, email]) => ({ GCP_WORKLOAD_IDENTITY_PROVIDER: provider, GCP_SERVICE_ACCOUNT: email }));

        this.registerOutputs({
            githubRepository,
            workloadIdentityProvider: this.workloadIdentityProvider,
            serviceAccountEmail: this.serviceAccountEmail,
            repositoryVariables: this.repositoryVariables,
        });
    }
}

/** What the stack's CI outputs say while CI access is off (an undefined output makes Pulumi warn on every run). */
export const ciOffOutput = "off: pulumi config set githubRepository owner/repo";

/**
 * The CI part of the stack as configured: undefined (no resource at all) when `githubRepository`
 * is unset; a {@link CiAccess} for that repository otherwise. Invalid settings throw a
 * {@link CiConfigError} that names the key and the `pulumi config set` that fixes it.
 */
export function ciAccessFromConfig(
    source: CiConfigSource,
    args: Omit<CiAccessArgs, "githubRepository" | "githubRepositoryOwnerId" | "githubRepositoryId">,
    name = "b24-ci",
    opts: pulumi.ComponentResourceOptions = {},
): CiAccess | undefined {
    const settings = parseCiConfig(source);
    if (!settings) return undefined;
    return new CiAccess(name, { ...args, ...settings }, opts);
}
