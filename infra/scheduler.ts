// The tick: a Pub/Sub topic (the guide's trigger topic) and a Cloud Scheduler job that publishes
// to it on the configured schedule. Cloud Scheduler's service agent publishes with its own
// predefined role, so the topic needs no extra grant.
import * as gcp from "./gcp";
import * as pulumi from "@pulumi/pulumi";

/** Publish retries: a missed tick is covered by the margin, a few quick retries cover a blip. */
export const schedulerRetryConfig = {
    retryCount: 3,
    minBackoffDuration: "10s",
    maxBackoffDuration: "60s",
    maxDoublings: 2,
} as const;

export interface SchedulerArgs {
    project: string;
    region: string;
    topicName: string;
    jobName: string;
    schedule: string;
    timeZone: string;
    labels: Record<string, string>;
}

export interface Tick {
    topic: gcp.pubsub.Topic;
    job: gcp.cloudscheduler.Job;
}

export function createTick(name: string, args: SchedulerArgs, opts: pulumi.CustomResourceOptions): Tick {
    // Carry one message per tick to the function's Eventarc trigger.
    const topic = new gcp.pubsub.Topic(`${name}-trigger-topic`, { project: args.project, name: args.topicName, labels: args.labels }, opts);

    // Publish a tick on the schedule, in the configured time zone.
    const job = new gcp.cloudscheduler.Job(
        `${name}-tick-job`,
        {
            project: args.project,
            region: args.region,
            name: args.jobName,
            description: `Ticks the Bitrix24 token refresher (${args.schedule}, ${args.timeZone}).`,
            schedule: args.schedule,
            timeZone: args.timeZone,
            pubsubTarget: { topicName: topic.id, data: Buffer.from("{}").toString("base64") },
            retryConfig: { ...schedulerRetryConfig },
        },
        opts,
    );

    return { topic, job };
}
