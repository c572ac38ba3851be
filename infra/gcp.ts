// The Google Cloud services the stack uses, re-exported one by one. Importing these instead of
// @pulumi/gcp's index keeps `gcp.<service>.<Resource>` in the code while the host's type-check
// (on every `pulumi preview`) reads the typings of a dozen services, not of all 150: seconds
// instead of tens of seconds.
export * as cloudfunctionsv2 from "@pulumi/gcp/cloudfunctionsv2";
export * as cloudrunv2 from "@pulumi/gcp/cloudrunv2";
export * as cloudscheduler from "@pulumi/gcp/cloudscheduler";
export * as iam from "@pulumi/gcp/iam"; // Workload Identity (infra/ci-access.ts)
export * as logging from "@pulumi/gcp/logging";
export * as monitoring from "@pulumi/gcp/monitoring";
export * as projects from "@pulumi/gcp/projects";
export * as pubsub from "@pulumi/gcp/pubsub";
export * as secretmanager from "@pulumi/gcp/secretmanager";
export * as serviceaccount from "@pulumi/gcp/serviceaccount";
export * as storage from "@pulumi/gcp/storage";
