// One portal's token rotation as a component: APIs, secrets, identities, tick, function and
// alerts, and optionally the public OAuth callback. Arguments are checked before any child exists;
// children are named from `name` (Pulumi URNs) and `namePrefix` (cloud names), so two portals in
// one stack never collide.
import * as pulumi from "@pulumi/pulumi";
import type * as gcp from "./gcp";
import { callbackState } from "../function/core/authorization";
import { enableProjectServices, type ProjectServices } from "./apis";
import {
    clientIdProblem,
    configDefaults,
    emailProblem,
    httpsUrlProblem,
    memberIdProblem,
    portalDomainProblem,
    projectIdProblem,
    regionProblem,
    timeZoneProblem,
} from "./config";
import { createCallbackFunction, createRefresherFunction, defaultFunctionBundle } from "./function";
import type { FunctionBundle } from "./function-bundle";
import { grantAccessTokenReader, type AccessTokenReaderGrant } from "./access-grants";
import { createIdentities, grantInvoker, grantPublicInvoker, type IdentityNames } from "./iam";
import { cronSyntaxProblem, refreshMarginSeconds } from "./margin";
import { createMonitoring, type MonitoringNames } from "./monitoring";
import { createTick } from "./scheduler";
import { createSecrets, secretNames, type SecretNames } from "./secrets";

export const defaultNamePrefix = "b24";

/** What `callbackUrl` says while the callback is off (an undefined output makes Pulumi warn on every run). */
export const callbackOffOutput = "off: pulumi config set callback true";

export interface TokenRotationArgs {
    /** Google Cloud project id. */
    project: string;
    /** Region of the function, the scheduler job and the source bucket, e.g. `europe-central2`. */
    region: string;
    /** The portal's host, e.g. `example.bitrix24.com`. */
    portalDomain: string;
    /** The Bitrix24 application's client id. */
    clientId: string;
    /** The application's client secret; treated as a Pulumi secret whatever is passed. */
    clientSecret: pulumi.Input<string>;
    /** Unix-cron schedule of the tick. Default `*\/10 * * * *`. */
    schedule?: string;
    /** IANA time zone of the schedule. Default `Etc/UTC`. */
    timeZone?: string;
    /** Bitrix24 OAuth token endpoint. Default `https://oauth.bitrix.info/oauth/token/`. */
    oauthTokenUrl?: string;
    /** Where alerts are mailed; no notification channel when unset. */
    alertEmail?: string;
    /** Prefix of every cloud name (`b24` gives the guide's names); one per portal. Default `b24`. */
    namePrefix?: string;
    /** The refresher's bundle. Default: `buildFunctionBundle()` into `dist/function`, once per run. */
    bundle?: FunctionBundle | Promise<FunctionBundle>;
    /**
     * APIs and the Pub/Sub service agent from {@link enableProjectServices}, shared by every portal
     * of the project. Default: the component enables its own.
     */
    projectServices?: ProjectServices;
    /**
     * Deploy the `oauthCallback` entry point as a public HTTP function (the only public resource),
     * so Bitrix24's redirect or install event stores the tokens with no human step. Default false.
     */
    callback?: boolean;
    /** The portal's member_id; when set, the callback also refuses tokens of any other member_id. Unused without `callback`. */
    memberId?: string;
}

export interface CloudNames {
    functionName: string;
    callbackFunctionName: string;
    topicName: string;
    jobName: string;
    bucketName: string;
    secrets: SecretNames;
    identities: IdentityNames;
    monitoring: MonitoringNames;
}

/** Every name the component gives a cloud resource; `b24` yields the guide's names. */
export function cloudNames(prefix: string, project: string): CloudNames {
    return {
        functionName: `${prefix}-token-refresh`,
        callbackFunctionName: `${prefix}-oauth-callback`,
        topicName: `${prefix}-token-refresh-trigger`,
        jobName: `${prefix}-token-refresh-job`,
        bucketName: `${project}-${prefix}-refresher-source`,
        secrets: secretNames(prefix),
        identities: {
            runtimeAccountId: `${prefix}-token-refresher`,
            triggerAccountId: `${prefix}-refresh-trigger`,
            buildAccountId: `${prefix}-refresh-build`,
            refresherRoleId: `${prefix.replace(/-/g, "_")}_token_refresher`,
        },
        monitoring: {
            failureMetric: `${prefix}-token-refresh-failures`,
            successMetric: `${prefix}-token-refresh-successes`,
            notificationChannel: `${prefix} token refresh alerts`,
            failureAlert: `${prefix}: token refresh failing`,
            missingSuccessAlert: `${prefix}: no successful token refresh`,
        },
    };
}

/**
 * The URL a portal admin opens to authorize the application (the first step of the guide, Part 2);
 * with `state`, the one the OAuth callback accepts (see `callbackState`).
 */
export function authorizeUrl(portalDomain: string, clientId: string, state?: string): string {
    const url = `https://${portalDomain}/oauth/authorize/?client_id=${encodeURIComponent(clientId)}&response_type=code`;
    return state === undefined ? url : `${url}&state=${encodeURIComponent(state)}`;
}

/** Service account ids allow 30 characters; `-token-refresher` and `-refresh-trigger` take 16. */
const namePrefixPattern = /^[a-z](?:[a-z0-9-]{0,12}[a-z0-9])?$/;

interface ResolvedArgs {
    project: string;
    region: string;
    portalDomain: string;
    clientId: string;
    schedule: string;
    timeZone: string;
    oauthTokenUrl: string;
    alertEmail?: string;
    namePrefix: string;
    refreshMarginSeconds: number;
    callback: boolean;
    memberId?: string;
}

/** Checks every argument and fills in defaults; throws one Error listing every problem. */
export function resolveTokenRotationArgs(name: string, args: TokenRotationArgs): ResolvedArgs {
    const problems: string[] = [];
    const check = (arg: string, problem: string | undefined) => {
        if (problem) problems.push(`${arg}: ${problem}`);
    };
    const namePrefix = args.namePrefix ?? defaultNamePrefix;
    check(
        "namePrefix",
        namePrefixPattern.test(namePrefix) ? undefined : `"${namePrefix}" must be 1-14 lowercase letters, digits or hyphens, starting with a letter`,
    );
    check("project", projectIdProblem(String(args.project ?? "")));
    check("region", regionProblem(String(args.region ?? "")));
    check("portalDomain", portalDomainProblem(args.portalDomain ?? ""));
    check("clientId", clientIdProblem(args.clientId ?? ""));
    if (args.clientSecret === undefined || args.clientSecret === null || args.clientSecret === "") problems.push("clientSecret: is required");
    const timeZone = args.timeZone ?? configDefaults.timeZone;
    check("timeZone", timeZoneProblem(timeZone));
    const schedule = args.schedule ?? configDefaults.schedule;
    let margin = 0;
    const syntax = cronSyntaxProblem(schedule);
    check("schedule", syntax && `"${schedule}" is not a valid cron schedule: ${syntax}`);
    if (!syntax && !timeZoneProblem(timeZone)) {
        try {
            margin = refreshMarginSeconds(schedule, timeZone);
        } catch (error) {
            check("schedule", error instanceof Error ? error.message : String(error));
        }
    }
    const oauthTokenUrl = args.oauthTokenUrl ?? configDefaults.oauthTokenUrl;
    check("oauthTokenUrl", httpsUrlProblem(oauthTokenUrl));
    if (args.projectServices && (!Array.isArray(args.projectServices.apis) || !args.projectServices.pubsubAgent)) {
        problems.push("projectServices: pass the result of enableProjectServices(), or leave it out");
    }
    const alertEmail = args.alertEmail || undefined;
    check("alertEmail", alertEmail && emailProblem(alertEmail));
    const callback = args.callback ?? false;
    check("callback", typeof callback === "boolean" ? undefined : `${JSON.stringify(callback)} is not a boolean`);
    const memberId = args.memberId || undefined;
    check("memberId", memberId && memberIdProblem(memberId));
    if (problems.length > 0) {
        throw new Error(`TokenRotation "${name}" has invalid arguments:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    }
    return {
        project: args.project,
        region: args.region,
        portalDomain: args.portalDomain,
        clientId: args.clientId,
        schedule,
        timeZone,
        oauthTokenUrl,
        alertEmail,
        namePrefix,
        refreshMarginSeconds: margin,
        callback,
        memberId,
    };
}

export class TokenRotation extends pulumi.ComponentResource {
    public static readonly type = "b24-token-rotation:index:TokenRotation";

    /** The gen2 function's name (also its Cloud Run service's name). */
    public readonly functionName: pulumi.Output<string>;
    /** The Pub/Sub topic the scheduler publishes to. */
    public readonly topicName: pulumi.Output<string>;
    /** The Cloud Scheduler job. */
    public readonly schedulerJobName: pulumi.Output<string>;
    /** Secret ids of the four secrets. */
    public readonly clientIdSecretName: pulumi.Output<string>;
    public readonly clientSecretSecretName: pulumi.Output<string>;
    public readonly accessTokenSecretName: pulumi.Output<string>;
    public readonly refreshTokenSecretName: pulumi.Output<string>;
    /**
     * Where a portal admin authorizes the application. With the callback on it carries the state
     * the callback accepts, derived from the client secret, so it is a Pulumi secret.
     */
    public readonly authorizeUrl: pulumi.Output<string>;
    /** The OAuth callback's URL, or {@link callbackOffOutput} while the callback is off. */
    public readonly callbackUrl: pulumi.Output<string>;
    /** REFRESH_MARGIN_SECONDS given to the refresher, derived from the schedule. */
    public readonly refreshMarginSeconds: pulumi.Output<number>;
    /** The identity the refresher runs as. */
    public readonly runtimeServiceAccountEmail: pulumi.Output<string>;
    /** The uploaded bundle's object name (content-hashed). */
    public readonly sourceObjectName: pulumi.Output<string>;

    private readonly componentName: string;
    private readonly accessTokenSecret: gcp.secretmanager.Secret;

    constructor(name: string, args: TokenRotationArgs, opts: pulumi.ComponentResourceOptions = {}) {
        const resolved = resolveTokenRotationArgs(name, args);
        super(TokenRotation.type, name, {}, opts);

        const { project, region, namePrefix } = resolved;
        const names = cloudNames(namePrefix, project);
        const labels = { app: "b24-token-rotation", portal: namePrefix, "managed-by": "pulumi" };

        const services = args.projectServices ?? enableProjectServices(name, project, { parent: this });
        const childOpts: pulumi.CustomResourceOptions = { parent: this, dependsOn: services.apis };

        const secrets = createSecrets(
            name,
            { project, names: names.secrets, labels, clientId: resolved.clientId, clientSecret: pulumi.secret(args.clientSecret) },
            childOpts,
        );
        this.componentName = name;
        this.accessTokenSecret = secrets.accessToken;
        const identities = createIdentities(
            name,
            { project, prefix: namePrefix, names: names.identities, secrets, pubsubAgent: services.pubsubAgent },
            childOpts,
        );
        const tick = createTick(
            name,
            { project, region, topicName: names.topicName, jobName: names.jobName, schedule: resolved.schedule, timeZone: resolved.timeZone, labels },
            childOpts,
        );
        const refresher = createRefresherFunction(
            name,
            {
                project,
                region,
                functionName: names.functionName,
                bucketName: names.bucketName,
                labels,
                bundle: Promise.resolve(args.bundle ?? defaultFunctionBundle()),
                topic: tick.topic,
                identities,
                secrets,
                environment: {
                    oauthTokenUrl: resolved.oauthTokenUrl,
                    refreshMarginSeconds: resolved.refreshMarginSeconds,
                    portalDomain: resolved.portalDomain,
                },
            },
            childOpts,
        );
        grantInvoker(name, { project, region, functionName: refresher.function.name, trigger: identities.trigger }, childOpts);
        const callback = resolved.callback
            ? createCallbackFunction(
                  name,
                  {
                      project,
                      region,
                      functionName: names.callbackFunctionName,
                      labels,
                      identities,
                      secrets,
                      refresher,
                      environment: { oauthTokenUrl: resolved.oauthTokenUrl, portalDomain: resolved.portalDomain, memberId: resolved.memberId },
                  },
                  childOpts,
              )
            : undefined;
        if (callback) grantPublicInvoker(name, { project, region, functionName: callback.name }, childOpts);
        createMonitoring(
            name,
            {
                project,
                functionName: names.functionName,
                callbackFunctionName: callback ? names.callbackFunctionName : undefined,
                portalDomain: resolved.portalDomain,
                names: names.monitoring,
                alertEmail: resolved.alertEmail,
            },
            childOpts,
        );

        this.functionName = refresher.function.name;
        this.topicName = tick.topic.name;
        this.schedulerJobName = tick.job.name;
        this.clientIdSecretName = secrets.clientId.secret.secretId;
        this.clientSecretSecretName = secrets.clientSecret.secret.secretId;
        this.accessTokenSecretName = secrets.accessToken.secretId;
        this.refreshTokenSecretName = secrets.refreshToken.secretId;
        const { portalDomain, clientId } = resolved;
        // The callback's state is an HMAC under the client secret: whoever has it may start an authorization.
        const withState = (clientSecret: string) => authorizeUrl(portalDomain, clientId, callbackState({ clientId, clientSecret, portalDomain }));
        this.authorizeUrl = callback ? pulumi.secret(pulumi.output(args.clientSecret).apply(withState)) : pulumi.output(authorizeUrl(portalDomain, clientId));
        this.callbackUrl = callback ? callback.url : pulumi.output(callbackOffOutput);
        this.refreshMarginSeconds = pulumi.output(resolved.refreshMarginSeconds);
        this.runtimeServiceAccountEmail = identities.runtime.email;
        this.sourceObjectName = refresher.source.name;

        this.registerOutputs({
            functionName: this.functionName,
            topicName: this.topicName,
            schedulerJobName: this.schedulerJobName,
            clientIdSecretName: this.clientIdSecretName,
            clientSecretSecretName: this.clientSecretSecretName,
            accessTokenSecretName: this.accessTokenSecretName,
            refreshTokenSecretName: this.refreshTokenSecretName,
            authorizeUrl: this.authorizeUrl,
            callbackUrl: this.callbackUrl,
            refreshMarginSeconds: this.refreshMarginSeconds,
            runtimeServiceAccountEmail: this.runtimeServiceAccountEmail,
            sourceObjectName: this.sourceObjectName,
        });
    }

    /**
     * Lets `member` (a consumer's service account) read the access token — and nothing else of the
     * rotation: never the refresh token or the client secret. `name` must be unique per consumer.
     */
    public grantAccessTokenReader(name: string, member: pulumi.Input<string>, opts: pulumi.CustomResourceOptions = {}): AccessTokenReaderGrant {
        return grantAccessTokenReader(`${this.componentName}-${name}`, { secret: this.accessTokenSecret, member }, { parent: this, ...opts });
    }
}
