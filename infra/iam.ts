// Identities and grants. The refresher's runtime account holds secret-level roles only; the
// trigger account may invoke this one function; the build account builds it. Nothing is granted
// to allUsers or allAuthenticatedUsers, except invoking the OAuth callback when it is deployed.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";
import type { Secrets } from "./secrets";

/**
 * Exactly the Secret Manager calls the refresher makes on the token secrets (GetSecret and
 * UpdateSecret for the lease annotation, ListSecretVersions, AccessSecretVersion,
 * AddSecretVersion, DestroySecretVersion). Only broad predefined roles hold `secrets.update`,
 * hence a custom role bound on the two token secrets alone.
 */
export const refresherPermissions = [
    "secretmanager.secrets.get",
    "secretmanager.secrets.update",
    "secretmanager.versions.access",
    "secretmanager.versions.add",
    "secretmanager.versions.destroy",
    "secretmanager.versions.list",
] as const;

/** Google's documented role for a user-specified Cloud Build account building functions. */
export const buildAccountProjectRoles = ["roles/cloudbuild.builds.builder"] as const;

export interface IdentityNames {
    runtimeAccountId: string;
    triggerAccountId: string;
    buildAccountId: string;
    refresherRoleId: string;
}

export interface Identities {
    runtime: gcp.serviceaccount.Account;
    trigger: gcp.serviceaccount.Account;
    build: gcp.serviceaccount.Account;
    refresherRole: gcp.projects.IAMCustomRole;
    /** Every grant the function needs before it is deployed. */
    grants: pulumi.Resource[];
}

export interface IdentitiesArgs {
    project: string;
    prefix: string;
    names: IdentityNames;
    secrets: Secrets;
    /** The project's Pub/Sub service agent, which signs the push deliveries as the trigger account. */
    pubsubAgent: gcp.projects.ServiceIdentity;
}

export function createIdentities(name: string, args: IdentitiesArgs, opts: pulumi.CustomResourceOptions): Identities {
    const { project, prefix, names, secrets, pubsubAgent } = args;

    // Run the refresher as its own identity, with no project-level role.
    const runtime = new gcp.serviceaccount.Account(
        `${name}-runtime-account`,
        { project, accountId: names.runtimeAccountId, displayName: `${prefix} token refresher (runtime)` },
        opts,
    );
    // Authenticate the Pub/Sub push that delivers each tick to the function.
    const trigger = new gcp.serviceaccount.Account(
        `${name}-trigger-account`,
        { project, accountId: names.triggerAccountId, displayName: `${prefix} token refresher (trigger)` },
        opts,
    );
    // Build the function's image, so the build does not depend on the project's default accounts.
    const build = new gcp.serviceaccount.Account(
        `${name}-build-account`,
        { project, accountId: names.buildAccountId, displayName: `${prefix} token refresher (build)` },
        opts,
    );

    // Define exactly the Secret Manager permissions the refresher uses on the token secrets.
    const refresherRole = new gcp.projects.IAMCustomRole(
        `${name}-refresher-role`,
        {
            project,
            roleId: names.refresherRoleId,
            title: `${prefix} token refresher`,
            description: "Read, add and destroy token versions and update the lease annotation; bound on the token secrets only.",
            permissions: [...refresherPermissions],
            stage: "GA",
        },
        opts,
    );

    const grants: pulumi.Resource[] = [];
    const credentialSecrets = [
        ["client-id", secrets.clientId.secret],
        ["client-secret", secrets.clientSecret.secret],
    ] as const;
    for (const [role, secret] of credentialSecrets) {
        grants.push(
            // Let the runtime account read this credential, and nothing else in the project.
            new gcp.secretmanager.SecretIamMember(
                `${name}-runtime-reads-${role}`,
                { project, secretId: secret.secretId, role: "roles/secretmanager.secretAccessor", member: runtime.member },
                opts,
            ),
        );
    }
    const tokenSecrets = [
        ["access-token", secrets.accessToken],
        ["refresh-token", secrets.refreshToken],
    ] as const;
    for (const [role, secret] of tokenSecrets) {
        grants.push(
            // Let the runtime account rotate this token secret through the custom role.
            new gcp.secretmanager.SecretIamMember(
                `${name}-runtime-rotates-${role}`,
                { project, secretId: secret.secretId, role: refresherRole.name, member: runtime.member },
                opts,
            ),
        );
    }

    for (const role of buildAccountProjectRoles) {
        grants.push(
            // Let the build account write build logs and images (it runs no user code at runtime).
            new gcp.projects.IAMMember(`${name}-build-${role.split("/")[1]!.replace(/\./g, "-")}`, { project, role, member: build.member }, opts),
        );
    }

    grants.push(
        // Let Pub/Sub mint the trigger account's OIDC token for push delivery; needed in projects
        // whose Pub/Sub agent predates 8 April 2021, harmless elsewhere; granted on this account only.
        new gcp.serviceaccount.IAMMember(
            `${name}-pubsub-signs-as-trigger`,
            { serviceAccountId: trigger.name, role: "roles/iam.serviceAccountTokenCreator", member: pubsubAgent.member },
            opts,
        ),
    );

    return { runtime, trigger, build, refresherRole, grants };
}

export interface InvokerArgs {
    project: string;
    region: string;
    /** The gen2 function; its Cloud Run service has the same name. */
    functionName: pulumi.Input<string>;
    trigger: gcp.serviceaccount.Account;
}

/** Lets the trigger account invoke the function's Cloud Run service, and no other service. */
export function grantInvoker(name: string, args: InvokerArgs, opts: pulumi.CustomResourceOptions): gcp.cloudrunv2.ServiceIamMember {
    // Let the trigger account invoke this function only.
    return new gcp.cloudrunv2.ServiceIamMember(
        `${name}-trigger-invokes-function`,
        { project: args.project, location: args.region, name: args.functionName, role: "roles/run.invoker", member: args.trigger.member },
        opts,
    );
}

export interface PublicInvokerArgs {
    project: string;
    region: string;
    /** The OAuth callback's gen2 function; its Cloud Run service has the same name. */
    functionName: pulumi.Input<string>;
}

/**
 * Lets anyone invoke the OAuth callback's Cloud Run service, and no other: Bitrix24's install
 * event and the portal user's browser carry no Google identity. The function itself refuses
 * whatever is not a genuine authorization of the configured portal.
 */
export function grantPublicInvoker(name: string, args: PublicInvokerArgs, opts: pulumi.CustomResourceOptions): gcp.cloudrunv2.ServiceIamMember {
    // Let anyone reach the OAuth callback, this one service only.
    return new gcp.cloudrunv2.ServiceIamMember(
        `${name}-public-invokes-callback`,
        { project: args.project, location: args.region, name: args.functionName, role: "roles/run.invoker", member: "allUsers" },
        opts,
    );
}
