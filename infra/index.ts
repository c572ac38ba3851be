// The Pulumi program: read and validate the stack configuration, deploy one portal's token
// rotation, and export what a newcomer needs next (names and the authorize URL).
import { loadStackConfig } from "./config";
import { TokenRotation } from "./token-rotation";

const config = loadStackConfig();

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
});

export const functionName = rotation.functionName;
export const topicName = rotation.topicName;
export const schedulerJobName = rotation.schedulerJobName;
export const clientIdSecretName = rotation.clientIdSecretName;
export const clientSecretSecretName = rotation.clientSecretSecretName;
export const accessTokenSecretName = rotation.accessTokenSecretName;
export const refreshTokenSecretName = rotation.refreshTokenSecretName;
export const authorizeUrl = rotation.authorizeUrl;
export const refreshMarginSeconds = rotation.refreshMarginSeconds;
