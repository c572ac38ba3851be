// The refresher: its bundle uploaded under a content-hashed name and deployed as a gen2 function
// fed by the trigger topic. Unchanged code keeps the object name, so nothing redeploys.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";
import { buildFunctionBundle, type FunctionBundle } from "./function-bundle";
import type { Identities } from "./iam";
import type { Secrets } from "./secrets";

/** The function's settings that the tests and the README rely on. */
export const functionSettings = {
    runtime: "nodejs22",
    entryPoint: "refreshTokens",
    maxInstanceCount: 1,
    maxInstanceRequestConcurrency: 1,
    timeoutSeconds: 120,
    availableMemory: "256Mi",
    ingressSettings: "ALLOW_INTERNAL_ONLY",
    eventType: "google.cloud.pubsub.topic.v1.messagePublished",
    retryPolicy: "RETRY_POLICY_RETRY",
    keepVersions: 2,
} as const;

let sharedBundle: Promise<FunctionBundle> | undefined;

/**
 * Builds `dist/function` once per program run, however many portals the stack deploys: two
 * concurrent builds into one folder would race.
 */
export function defaultFunctionBundle(): Promise<FunctionBundle> {
    sharedBundle ??= buildFunctionBundle();
    return sharedBundle;
}

/** The source object's name: changes exactly when the bundle's content does. */
export function sourceObjectName(functionName: string, bundleSha256: string): string {
    return `${functionName}/${bundleSha256}.zip`;
}

export interface FunctionArgs {
    project: string;
    region: string;
    functionName: string;
    bucketName: string;
    labels: Record<string, string>;
    bundle: Promise<FunctionBundle>;
    topic: gcp.pubsub.Topic;
    identities: Identities;
    secrets: Secrets;
    environment: {
        oauthTokenUrl: string;
        refreshMarginSeconds: number;
        portalDomain: string;
    };
}

export interface RefresherFunction {
    bucket: gcp.storage.Bucket;
    source: gcp.storage.BucketObject;
    function: gcp.cloudfunctionsv2.Function;
}

export function createRefresherFunction(name: string, args: FunctionArgs, opts: pulumi.CustomResourceOptions): RefresherFunction {
    const { project, region, identities, secrets } = args;
    const bundle = pulumi.output(args.bundle);

    // Keep the uploaded bundles, private, in the function's region.
    const bucket = new gcp.storage.Bucket(
        `${name}-source-bucket`,
        {
            project,
            name: args.bucketName,
            location: region.toUpperCase(),
            uniformBucketLevelAccess: true,
            publicAccessPrevention: "enforced",
            forceDestroy: true,
            labels: args.labels,
        },
        opts,
    );

    // Upload the bundle under its content hash.
    const source = new gcp.storage.BucketObject(
        `${name}-source-object`,
        {
            bucket: bucket.name,
            name: bundle.apply((b) => sourceObjectName(args.functionName, b.sha256)),
            source: bundle.apply((b) => new pulumi.asset.FileArchive(b.dir)),
            contentType: "application/zip",
        },
        opts,
    );

    // Run the refresher on each tick of the trigger topic, one invocation at a time.
    const fn = new gcp.cloudfunctionsv2.Function(
        `${name}-function`,
        {
            project,
            location: region,
            name: args.functionName,
            description: `Keeps the Bitrix24 token pair of ${args.environment.portalDomain} fresh in Secret Manager.`,
            labels: args.labels,
            buildConfig: {
                runtime: functionSettings.runtime,
                entryPoint: functionSettings.entryPoint,
                serviceAccount: identities.build.id,
                source: { storageSource: { bucket: bucket.name, object: source.name } },
            },
            serviceConfig: {
                minInstanceCount: 0,
                maxInstanceCount: functionSettings.maxInstanceCount,
                maxInstanceRequestConcurrency: functionSettings.maxInstanceRequestConcurrency,
                timeoutSeconds: functionSettings.timeoutSeconds,
                availableMemory: functionSettings.availableMemory,
                ingressSettings: functionSettings.ingressSettings,
                allTrafficOnLatestRevision: true,
                serviceAccountEmail: identities.runtime.email,
                environmentVariables: {
                    PROJECT_ID: project,
                    ACCESS_TOKEN_SECRET: secrets.accessToken.secretId,
                    REFRESH_TOKEN_SECRET: secrets.refreshToken.secretId,
                    B24_OAUTH_TOKEN_URL: args.environment.oauthTokenUrl,
                    REFRESH_MARGIN_SECONDS: String(args.environment.refreshMarginSeconds),
                    KEEP_VERSIONS: String(functionSettings.keepVersions),
                    B24_PORTAL_DOMAIN: args.environment.portalDomain,
                },
                // Pinned to the versions this stack manages: a new client secret redeploys, `latest` never surprises.
                secretEnvironmentVariables: [
                    { key: "B24_CLIENT_ID", projectId: project, secret: secrets.clientId.secret.secretId, version: secrets.clientId.version.version },
                    {
                        key: "B24_CLIENT_SECRET",
                        projectId: project,
                        secret: secrets.clientSecret.secret.secretId,
                        version: secrets.clientSecret.version.version,
                    },
                ],
            },
            eventTrigger: {
                eventType: functionSettings.eventType,
                pubsubTopic: args.topic.id,
                retryPolicy: functionSettings.retryPolicy,
                serviceAccountEmail: identities.trigger.email,
                triggerRegion: region,
            },
        },
        pulumi.mergeOptions(opts, { dependsOn: identities.grants }),
    );

    return { bucket, source, function: fn };
}

