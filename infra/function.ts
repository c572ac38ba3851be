// The refresher: its bundle uploaded under a content-hashed name and deployed as a gen2 function
// fed by the trigger topic. Unchanged code keeps the object name, so nothing redeploys. The
// optional OAuth callback is the same object's other entry point, as a public HTTP function.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";
import { buildFunctionBundle, type FunctionBundle } from "./function-bundle";
import type { Identities } from "./iam";
import type { Secrets } from "./secrets";

/** The refresher's settings that the tests and the README rely on. */
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

/** The OAuth callback's settings: an HTTP function that Bitrix24 and a browser must reach. */
export const callbackSettings = {
    entryPoint: "oauthCallback",
    maxInstanceCount: 2,
    maxInstanceRequestConcurrency: 1,
    timeoutSeconds: 60,
    availableMemory: "256Mi",
    ingressSettings: "ALLOW_ALL",
} as const;

/** The service settings one deployed entry point of the bundle has. */
type EntryPointSettings = Pick<
    typeof functionSettings | typeof callbackSettings,
    "entryPoint" | "maxInstanceCount" | "maxInstanceRequestConcurrency" | "timeoutSeconds" | "availableMemory" | "ingressSettings"
>;

/** What every function of the stack shares: where it runs, as whom, and the portal's secrets. */
interface StackFunctionContext {
    project: string;
    region: string;
    labels: Record<string, string>;
    identities: Identities;
    secrets: Secrets;
}

function contextOf({ project, region, labels, identities, secrets }: StackFunctionContext): StackFunctionContext {
    return { project, region, labels, identities, secrets };
}

/** The environment both entry points read (function/config.ts), before each one's own variables. */
interface SharedEnvironment {
    oauthTokenUrl: string;
    portalDomain: string;
}

export interface FunctionArgs extends StackFunctionContext {
    functionName: string;
    bucketName: string;
    bundle: Promise<FunctionBundle>;
    topic: gcp.pubsub.Topic;
    environment: SharedEnvironment & { refreshMarginSeconds: number };
}

export interface RefresherFunction {
    bucket: gcp.storage.Bucket;
    source: gcp.storage.BucketObject;
    function: gcp.cloudfunctionsv2.Function;
}

interface EntryPointArgs extends StackFunctionContext {
    functionName: string;
    description: string;
    settings: EntryPointSettings;
    bucket: gcp.storage.Bucket;
    source: gcp.storage.BucketObject;
    environment: SharedEnvironment & { extra: Record<string, string> };
    eventTrigger?: gcp.cloudfunctionsv2.FunctionArgs["eventTrigger"];
}

/** One entry point of the uploaded bundle as a gen2 function, with the pinned client credentials. */
function deployEntryPoint(resourceName: string, args: EntryPointArgs, opts: pulumi.CustomResourceOptions): gcp.cloudfunctionsv2.Function {
    const { project, identities, secrets, settings } = args;
    const pinned = (key: string, credential: Secrets["clientId"]) => ({
        key,
        projectId: project,
        secret: credential.secret.secretId,
        version: credential.version.version,
    });
    return new gcp.cloudfunctionsv2.Function(
        resourceName,
        {
            project,
            location: args.region,
            name: args.functionName,
            description: args.description,
            labels: args.labels,
            buildConfig: {
                runtime: functionSettings.runtime,
                entryPoint: settings.entryPoint,
                serviceAccount: identities.build.id,
                source: { storageSource: { bucket: args.bucket.name, object: args.source.name } },
            },
            serviceConfig: {
                minInstanceCount: 0,
                maxInstanceCount: settings.maxInstanceCount,
                maxInstanceRequestConcurrency: settings.maxInstanceRequestConcurrency,
                timeoutSeconds: settings.timeoutSeconds,
                availableMemory: settings.availableMemory,
                ingressSettings: settings.ingressSettings,
                allTrafficOnLatestRevision: true,
                serviceAccountEmail: identities.runtime.email,
                environmentVariables: {
                    PROJECT_ID: project,
                    ACCESS_TOKEN_SECRET: secrets.accessToken.secretId,
                    REFRESH_TOKEN_SECRET: secrets.refreshToken.secretId,
                    B24_OAUTH_TOKEN_URL: args.environment.oauthTokenUrl,
                    B24_PORTAL_DOMAIN: args.environment.portalDomain,
                    ...args.environment.extra,
                },
                // Pinned to the versions this stack manages: a new client secret redeploys, `latest` never surprises.
                secretEnvironmentVariables: [pinned("B24_CLIENT_ID", secrets.clientId), pinned("B24_CLIENT_SECRET", secrets.clientSecret)],
            },
            eventTrigger: args.eventTrigger,
        },
        pulumi.mergeOptions(opts, { dependsOn: identities.grants }),
    );
}

export function createRefresherFunction(name: string, args: FunctionArgs, opts: pulumi.CustomResourceOptions): RefresherFunction {
    const { project, region, identities } = args;
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
    const fn = deployEntryPoint(
        `${name}-function`,
        {
            ...contextOf(args),
            functionName: args.functionName,
            description: `Keeps the Bitrix24 token pair of ${args.environment.portalDomain} fresh in Secret Manager.`,
            settings: functionSettings,
            bucket,
            source,
            environment: {
                oauthTokenUrl: args.environment.oauthTokenUrl,
                portalDomain: args.environment.portalDomain,
                extra: {
                    REFRESH_MARGIN_SECONDS: String(args.environment.refreshMarginSeconds),
                    KEEP_VERSIONS: String(functionSettings.keepVersions),
                },
            },
            eventTrigger: {
                eventType: functionSettings.eventType,
                pubsubTopic: args.topic.id,
                retryPolicy: functionSettings.retryPolicy,
                serviceAccountEmail: identities.trigger.email,
                triggerRegion: region,
            },
        },
        opts,
    );

    return { bucket, source, function: fn };
}

export interface CallbackFunctionArgs extends StackFunctionContext {
    functionName: string;
    /** The refresher's bucket and content-hashed object: the callback is another entry point of the same bundle. */
    refresher: RefresherFunction;
    environment: SharedEnvironment & { memberId?: string };
}

/**
 * The `oauthCallback` entry point as a public HTTP function, running as the refresher's runtime
 * account (its custom role on the token secrets covers the lease and the writes an authorization makes).
 */
export function createCallbackFunction(name: string, args: CallbackFunctionArgs, opts: pulumi.CustomResourceOptions): gcp.cloudfunctionsv2.Function {
    const { memberId, ...environment } = args.environment;
    // Receive Bitrix24's OAuth redirect and install event, and store the tokens they carry.
    return deployEntryPoint(
        `${name}-callback-function`,
        {
            ...contextOf(args),
            functionName: args.functionName,
            description: `Receives Bitrix24's OAuth redirect and install event for ${environment.portalDomain} and stores the tokens in Secret Manager.`,
            settings: callbackSettings,
            bucket: args.refresher.bucket,
            source: args.refresher.source,
            environment: { ...environment, extra: memberId ? { B24_MEMBER_ID: memberId } : {} },
        },
        opts,
    );
}
