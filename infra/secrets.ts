// The guide's four secrets. Client id and secret get versions managed here from stack config; the
// two token secrets get none: the refresher owns their versions and its lease annotation.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";

export interface SecretNames {
    clientId: string;
    clientSecret: string;
    accessToken: string;
    refreshToken: string;
}

/** The guide's names, `b24-client-id` and so on, under a portal's prefix. */
export function secretNames(prefix: string): SecretNames {
    return {
        clientId: `${prefix}-client-id`,
        clientSecret: `${prefix}-client-secret`,
        accessToken: `${prefix}-access-token`,
        refreshToken: `${prefix}-refresh-token`,
    };
}

export interface CredentialSecret {
    secret: gcp.secretmanager.Secret;
    /** The Pulumi-managed version; the function pins its number, never `latest`. */
    version: gcp.secretmanager.SecretVersion;
}

export interface Secrets {
    clientId: CredentialSecret;
    clientSecret: CredentialSecret;
    accessToken: gcp.secretmanager.Secret;
    refreshToken: gcp.secretmanager.Secret;
}

export interface SecretsArgs {
    project: string;
    names: SecretNames;
    labels: Record<string, string>;
    clientId: string;
    /** Must already be a Pulumi secret; it only ever flows into the version's payload. */
    clientSecret: pulumi.Output<string>;
}

export function createSecrets(name: string, args: SecretsArgs, opts: pulumi.CustomResourceOptions): Secrets {
    const secret = (role: string, secretId: string, extra: pulumi.CustomResourceOptions = {}) =>
        new gcp.secretmanager.Secret(
            `${name}-${role}`,
            { project: args.project, secretId, replication: { auto: {} }, labels: args.labels },
            pulumi.mergeOptions(opts, extra),
        );

    // Hold the Bitrix24 application's client id.
    const clientIdSecret = secret("client-id-secret", args.names.clientId);
    // Store the configured client id as the secret's managed version.
    const clientIdVersion = new gcp.secretmanager.SecretVersion(
        `${name}-client-id-version`,
        { secret: clientIdSecret.id, secretData: args.clientId },
        opts,
    );

    // Hold the Bitrix24 application's client secret.
    const clientSecretSecret = secret("client-secret-secret", args.names.clientSecret);
    // Store the configured client secret (a Pulumi secret end to end) as the managed version.
    const clientSecretVersion = new gcp.secretmanager.SecretVersion(
        `${name}-client-secret-version`,
        { secret: clientSecretSecret.id, secretData: pulumi.secret(args.clientSecret) },
        opts,
    );

    // The token secrets' versions and the lease annotation belong to the refresher: a refresh or
    // `pulumi up --refresh` must never roll them back.
    const tokenOpts: pulumi.CustomResourceOptions = { ignoreChanges: ["annotations"] };
    // Hold the current access token; versions are added by the refresher.
    const accessToken = secret("access-token-secret", args.names.accessToken, tokenOpts);
    // Hold the current refresh token and the refresher's lease; versions are added by the refresher.
    const refreshToken = secret("refresh-token-secret", args.names.refreshToken, tokenOpts);

    return {
        clientId: { secret: clientIdSecret, version: clientIdVersion },
        clientSecret: { secret: clientSecretSecret, version: clientSecretVersion },
        accessToken,
        refreshToken,
    };
}
