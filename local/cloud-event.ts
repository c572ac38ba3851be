// The HTTP request Eventarc sends to a gen2 function for a Pub/Sub message (binary content mode):
// ce-* headers plus the Pub/Sub push body. The local scheduler and the tests post exactly this.
import { randomUUID } from "node:crypto";

export interface PubSubDelivery {
    projectId: string;
    topic: string;
    /** Message body; Cloud Scheduler's Pub/Sub target publishes the job's data. */
    data?: string;
    id?: string;
    time?: Date;
}

export function pubSubCloudEvent(delivery: PubSubDelivery): { headers: Record<string, string>; body: string } {
    const id = delivery.id ?? String(Math.floor(Math.random() * 1e16));
    const time = (delivery.time ?? new Date()).toISOString();
    return {
        headers: {
            "content-type": "application/json",
            "ce-id": id,
            "ce-specversion": "1.0",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-source": `//pubsub.googleapis.com/projects/${delivery.projectId}/topics/${delivery.topic}`,
            "ce-time": time,
        },
        body: JSON.stringify({
            message: {
                data: Buffer.from(delivery.data ?? "{}").toString("base64"),
                messageId: id,
                message_id: id,
                publishTime: time,
                publish_time: time,
            },
            subscription: `projects/${delivery.projectId}/subscriptions/eventarc-${randomUUID().slice(0, 8)}`,
        }),
    };
}

/** Posts one delivery; resolves with the status and Cloud Run's error marker header. */
export async function deliverCloudEvent(url: string, delivery: PubSubDelivery): Promise<{ status: number; error: string | null }> {
    const { headers, body } = pubSubCloudEvent(delivery);
    const response = await fetch(url, { method: "POST", headers, body });
    await response.arrayBuffer();
    return { status: response.status, error: response.headers.get("x-google-status") };
}
