// Lets a consuming service read the access token, and nothing else of the rotation: never the
// refresh token (whoever holds it can end the chain), never the client secret.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";

/**
 * The roles a reader needs, both bound on the access-token secret alone:
 * - `secretAccessor`: `secretmanager.versions.access`, the payload (the token);
 * - `viewer`: `secretmanager.secrets.get` and `secretmanager.versions.list`, which the consumer
 *   client needs to find the newest version by number (the `b24-access-version` annotation, or the
 *   list of enabled versions) instead of reading the eventually consistent `latest`. It reads
 *   metadata only (annotations, version numbers, states, times; no payload). It is the smallest
 *   predefined role with those two permissions; a custom role would need `iam.roles.create` on the
 *   project and a role id per stack for no gain, since on one secret viewer grants nothing more
 *   than that secret's metadata.
 */
export const accessTokenReaderRoles = ["roles/secretmanager.secretAccessor", "roles/secretmanager.viewer"] as const;

export interface AccessTokenReaderArgs {
    /** The access-token secret (TokenRotation's `b24-access-token`). */
    secret: gcp.secretmanager.Secret;
    /** Who may read it, as an IAM member: `serviceAccount:…`, e.g. a `gcp.serviceaccount.Account`'s `member`. */
    member: pulumi.Input<string>;
}

export interface AccessTokenReaderGrant {
    /** `roles/secretmanager.secretAccessor` on the access-token secret. */
    accessor: gcp.secretmanager.SecretIamMember;
    /** `roles/secretmanager.viewer` on the access-token secret. */
    viewer: gcp.secretmanager.SecretIamMember;
}

/** Why a plain member string cannot be a consumer's identity, or undefined when it can. */
export function memberProblem(member: string): string | undefined {
    if (member === "allUsers" || member === "allAuthenticatedUsers") return `member "${member}" would make the access token public`;
    if (!/^(serviceAccount|user|group|principal|principalSet):\S+$/.test(member)) {
        return `member "${member}" must be an IAM member such as serviceAccount:orders-api@my-project.iam.gserviceaccount.com`;
    }
    return undefined;
}

/** Why a secret must not be given to a reader (it is a refresh token or a client credential), or undefined. */
export function readerSecretProblem(secretId: string): string | undefined {
    return /-(refresh-token|client-secret|client-id)$/.test(secretId)
        ? `"${secretId}" is not the access-token secret; consumers may read only the access token`
        : undefined;
}

/**
 * Grants `member` read access to the access-token secret: its payload and its metadata, on that
 * secret only. Non-authoritative (`SecretIamMember`): other members' grants stay as they are.
 * Resource names derive from `name`, e.g. `orders-api` gives `orders-api-reads-access-token`.
 */
export function grantAccessTokenReader(name: string, args: AccessTokenReaderArgs, opts: pulumi.CustomResourceOptions = {}): AccessTokenReaderGrant {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
        throw new Error(`grantAccessTokenReader: name "${name}" must start with a letter or digit and hold only letters, digits, ".", "_" and "-"`);
    }
    if (!args || !args.secret) throw new Error(`grantAccessTokenReader "${name}": secret is required (the access-token secret)`);
    if (args.member === undefined || args.member === null || args.member === "") {
        throw new Error(`grantAccessTokenReader "${name}": member is required, e.g. serviceAccount:orders-api@my-project.iam.gserviceaccount.com`);
    }
    if (typeof args.member === "string") {
        const problem = memberProblem(args.member);
        if (problem) throw new Error(`grantAccessTokenReader "${name}": ${problem}`);
    }
    const { secret, member } = args;
    // A reader must never get the refresh token or the client credentials, whatever is passed in.
    const secretId = secret.secretId.apply((id) => {
        const problem = readerSecretProblem(id);
        if (problem) throw new Error(`grantAccessTokenReader "${name}": ${problem}`);
        return id;
    });
    const binding = (suffix: string, role: string) =>
        new gcp.secretmanager.SecretIamMember(`${name}-${suffix}`, { project: secret.project, secretId, role, member }, opts);
    return {
        // Let the consumer read the access token's payload, on this secret only.
        accessor: binding("reads-access-token", accessTokenReaderRoles[0]),
        // Let the consumer find the newest version by number (annotations, version list), on this secret only.
        viewer: binding("views-access-token", accessTokenReaderRoles[1]),
    };
}
