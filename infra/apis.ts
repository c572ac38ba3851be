// Project-wide services: the Google Cloud APIs the stack uses, enabled and left enabled on destroy
// (other workloads may rely on them), and the Pub/Sub service agent that signs push deliveries.
// One set per project: several portals in one stack share it.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";

/** Every API a fresh project needs for this stack (Service Usage itself is on in every project). */
export const requiredApis = [
    "artifactregistry.googleapis.com", // gen2 build images (gcf-artifacts)
    "cloudbuild.googleapis.com", // builds the function from the uploaded source
    "cloudfunctions.googleapis.com", // the refresher
    "cloudresourcemanager.googleapis.com", // project-level IAM of the build account
    "cloudscheduler.googleapis.com", // the tick
    "eventarc.googleapis.com", // the Pub/Sub trigger of a gen2 function
    "iam.googleapis.com", // service accounts and the custom role
    "logging.googleapis.com", // log-based metrics
    "monitoring.googleapis.com", // alert policies and the e-mail channel
    "pubsub.googleapis.com", // the trigger topic
    "run.googleapis.com", // gen2 functions run on Cloud Run
    "secretmanager.googleapis.com", // the four secrets
    "storage.googleapis.com", // the source bucket
] as const;

export interface ProjectServices {
    /** Enabled APIs; every other resource depends on them. */
    apis: gcp.projects.Service[];
    /** The project's Pub/Sub service agent (`service-<number>@gcp-sa-pubsub…`). */
    pubsubAgent: gcp.projects.ServiceIdentity;
}

/** Enables {@link requiredApis} in `project` and makes sure the Pub/Sub service agent exists. */
export function enableProjectServices(name: string, project: string, opts: pulumi.CustomResourceOptions = {}): ProjectServices {
    const apis = requiredApis.map(
        (service) =>
            // Enable one API and keep it enabled when the stack is destroyed.
            new gcp.projects.Service(
                `${name}-api-${service.split(".")[0]}`,
                { project, service, disableOnDestroy: false, disableDependentServices: false },
                opts,
            ),
    );
    // Look up (and create if needed) the project's Pub/Sub service agent.
    const pubsubAgent = new gcp.projects.ServiceIdentity(
        `${name}-pubsub-agent`,
        { project, service: "pubsub.googleapis.com" },
        pulumi.mergeOptions(opts, { dependsOn: apis }),
    );
    return { apis, pubsubAgent };
}
