// The Pulumi program: read and validate the stack configuration, deploy one portal's token
// rotation (and, when configured, the OAuth callback and the CI access), and export what a
// newcomer needs next (names, the authorize URL, the callback URL, the CI variables).
import * as pulumi from "@pulumi/pulumi";
import { ciAccessFromConfig, ciOffOutput } from "./ci-access";
import { loadStackConfig } from "./config";
import { TokenRotation } from "./token-rotation";

const config = loadStackConfig();
// Keyless deployments from one GitHub repository when `githubRepository` is set (README, "Continuous delivery").
const ci = ciAccessFromConfig(new pulumi.Config(), { project: config.project });

// Deploy the guide's system for the configured portal, under the guide's `b24-*` names.
const rotation = new TokenRotation("b24", {
    project: config.project,
    region: config.region,
    portalDomain: config.portalDomain,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    schedule: config.schedule,
    timeZone: config.timeZone,
    oauthTokenUrl: config.oauthTokenUrl,
    alertEmail: config.alertEmail,
    callback: config.callback,
    memberId: config.memberId,
});

export const functionName = rotation.functionName;
export const topicName = rotation.topicName;
export const schedulerJobName = rotation.schedulerJobName;
export const clientIdSecretName = rotation.clientIdSecretName;
export const clientSecretSecretName = rotation.clientSecretSecretName;
export const accessTokenSecretName = rotation.accessTokenSecretName;
export const refreshTokenSecretName = rotation.refreshTokenSecretName;
export const authorizeUrl = rotation.authorizeUrl;
export const callbackUrl = rotation.callbackUrl;
export const refreshMarginSeconds = rotation.refreshMarginSeconds;
export const ciWorkloadIdentityProvider = ci?.workloadIdentityProvider ?? ciOffOutput;
export const ciServiceAccount = ci?.serviceAccountEmail ?? ciOffOutput;
