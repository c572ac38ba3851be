// Alerting on the refresher's structured log lines (one JSON object per line on stdout, which
// Cloud Logging puts in jsonPayload): any error or re-authorization line, and no successful
// refresh for twice the token's life. The OAuth callback's error lines (`authorize.failed`) count
// as failures too; its `authorize.refused` warnings do not (a public endpoint gets stray requests).
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";
import { accessTokenLifetimeSeconds } from "./margin";

/** No `refresh.succeeded` line for this long raises the absence alert: twice the token's life. */
export const missingSuccessAlertSeconds = 2 * accessTokenLifetimeSeconds;
/** Transient failures in every 10-minute window for this long (two ticks in a row at the default schedule) raise the failure alert. */
export const transientAlertSeconds = 600;

export interface MonitoringNames {
    failureMetric: string;
    successMetric: string;
    notificationChannel: string;
    failureAlert: string;
    missingSuccessAlert: string;
}

export interface MonitoringArgs {
    project: string;
    functionName: string;
    /** The OAuth callback's function, when deployed. */
    callbackFunctionName?: string;
    portalDomain: string;
    names: MonitoringNames;
    alertEmail?: string;
}

export interface Monitoring {
    failureMetric: gcp.logging.Metric;
    successMetric: gcp.logging.Metric;
    failureAlert: gcp.monitoring.AlertPolicy;
    missingSuccessAlert: gcp.monitoring.AlertPolicy;
    emailChannel?: gcp.monitoring.NotificationChannel;
}

/** Gen2 functions log as their Cloud Run service. */
export function functionLogFilter(functionName: string, ...others: string[]): string {
    const services = [functionName, ...others].map((name) => `resource.labels.service_name="${name}"`);
    return `resource.type="cloud_run_revision" AND ${services.length === 1 ? services[0] : `(${services.join(" OR ")})`}`;
}

export function createMonitoring(name: string, args: MonitoringArgs, opts: pulumi.CustomResourceOptions): Monitoring {
    const { project, names } = args;
    const source = functionLogFilter(args.functionName);
    const callback = args.callbackFunctionName;
    const failureSource = callback ? functionLogFilter(args.functionName, callback) : source;
    const counter = { metricKind: "DELTA", valueType: "INT64", unit: "1" };

    // Count the refresher's failure lines: ERROR (transient, retried) and CRITICAL (re-authorization needed).
    const failureMetric = new gcp.logging.Metric(
        `${name}-failure-metric`,
        {
            project,
            name: names.failureMetric,
            description: `Error and re-authorization lines of ${args.functionName}${callback ? ` and ${callback}` : ""}, by event.`,
            filter: `${failureSource} AND severity>=ERROR`,
            metricDescriptor: {
                ...counter,
                labels: [
                    { key: "event", valueType: "STRING", description: "jsonPayload.event of the line" },
                    { key: "severity", valueType: "STRING", description: "ERROR (transient, retried) or CRITICAL (needs a human)" },
                ],
            },
            labelExtractors: { event: "EXTRACT(jsonPayload.event)", severity: "EXTRACT(severity)" },
        },
        opts,
    );

    // Count successful refreshes, one NOTICE line each.
    const successMetric = new gcp.logging.Metric(
        `${name}-success-metric`,
        {
            project,
            name: names.successMetric,
            description: `refresh.succeeded lines of ${args.functionName}.`,
            filter: `${source} AND jsonPayload.event="refresh.succeeded"`,
            metricDescriptor: counter,
        },
        opts,
    );

    // Mail the alerts to the configured address.
    const emailChannel = args.alertEmail
        ? new gcp.monitoring.NotificationChannel(
              `${name}-alert-email`,
              { project, displayName: names.notificationChannel, type: "email", labels: { email_address: args.alertEmail } },
              opts,
          )
        : undefined;
    const notificationChannels = emailChannel ? [emailChannel.name] : [];
    const metricFilter = (metric: gcp.logging.Metric) =>
        pulumi.interpolate`resource.type="cloud_run_revision" AND metric.type="logging.googleapis.com/user/${metric.name}"`;
    // Sum over revisions: a redeploy starts new time series and must not look like silence.
    const sumOver = (seconds: number) => [{ alignmentPeriod: `${seconds}s`, perSeriesAligner: "ALIGN_DELTA", crossSeriesReducer: "REDUCE_SUM" }];
    const authorizeHint = `https://${args.portalDomain}/oauth/authorize/`;

    // Alert at once when a human is needed, and when transient failures outlast two ticks.
    const failureAlert = new gcp.monitoring.AlertPolicy(
        `${name}-failure-alert`,
        {
            project,
            displayName: names.failureAlert,
            combiner: "OR",
            severity: "ERROR",
            conditions: [
                {
                    displayName: "Refresher asks for re-authorization or reports a broken deployment (CRITICAL)",
                    conditionThreshold: {
                        filter: pulumi.interpolate`${metricFilter(failureMetric)} AND metric.label."severity"="CRITICAL"`,
                        comparison: "COMPARISON_GT",
                        thresholdValue: 0,
                        duration: "0s",
                        aggregations: sumOver(300),
                        trigger: { count: 1 },
                    },
                },
                {
                    // One transient failure is retried and harmless; failures in every window for
                    // ${transientAlertSeconds / 60} minutes mean the token may expire before a refresh succeeds.
                    displayName: `Refresher failing for ${transientAlertSeconds / 60} minutes (ERROR)`,
                    conditionThreshold: {
                        filter: metricFilter(failureMetric),
                        comparison: "COMPARISON_GT",
                        thresholdValue: 0,
                        duration: `${transientAlertSeconds}s`,
                        aggregations: sumOver(600),
                        trigger: { count: 1 },
                    },
                },
            ],
            notificationChannels,
            alertStrategy: { autoClose: "3600s" },
            documentation: {
                mimeType: "text/markdown",
                content: [
                    `The token refresher \`${args.functionName}\` for ${args.portalDomain} logged a failure.`,
                    "",
                    `- \`refresh.failed\` (ERROR) is transient: the tick is retried and the next tick tries again. This alert fires only when it has repeated for ${transientAlertSeconds / 60} minutes: check Bitrix24's status and Secret Manager quotas.`,
                    `- \`refresh.reauthorization_needed\` (CRITICAL) means the refresh token is gone or the credentials are wrong: authorize the app again at ${authorizeHint} and store the new tokens.`,
                    ...(callback
                        ? [`- \`authorize.failed\` (ERROR or CRITICAL) comes from the OAuth callback \`${callback}\`: an authorization arrived but was not stored. The line says why; authorize again.`]
                        : []),
                    "",
                    `Logs: \`${failureSource} AND severity>=ERROR\``,
                ].join("\n"),
            },
        },
        pulumi.mergeOptions(opts, { dependsOn: [failureMetric] }),
    );

    // Alert when no refresh has succeeded for twice the token's life.
    const missingSuccessAlert = new gcp.monitoring.AlertPolicy(
        `${name}-missing-success-alert`,
        {
            project,
            displayName: names.missingSuccessAlert,
            combiner: "OR",
            severity: "CRITICAL",
            conditions: [
                {
                    displayName: `No successful refresh for ${missingSuccessAlertSeconds / 3600} h`,
                    conditionAbsent: {
                        filter: metricFilter(successMetric),
                        duration: `${missingSuccessAlertSeconds}s`,
                        aggregations: sumOver(600),
                        trigger: { count: 1 },
                    },
                },
            ],
            notificationChannels,
            documentation: {
                mimeType: "text/markdown",
                content: [
                    `\`${args.functionName}\` has logged no \`refresh.succeeded\` for ${missingSuccessAlertSeconds / 3600} h, so the access token in Secret Manager has expired.`,
                    "Check the function's logs and the Cloud Scheduler job; if the logs ask for re-authorization, authorize the app again.",
                    "This alert can only fire after the first successful refresh.",
                ].join("\n"),
            },
        },
        pulumi.mergeOptions(opts, { dependsOn: [successMetric] }),
    );

    return { failureMetric, successMetric, failureAlert, missingSuccessAlert, emailChannel };
}
