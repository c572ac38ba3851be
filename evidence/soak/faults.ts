// The failures the soak injects, in one table: what each one is, when it can apply, and whether it
// can spend a refresh token (only those may break the chain, and then never silently).
import { status } from "@grpc/grpc-js";
import type { SandboxFault } from "../../local/bitrix24-sandbox/sandbox";
import type { FaultSpec } from "../../local/secret-manager/emulator";
import type { Random } from "./prng";

export const faultKinds = [
    "oauth_html502",
    "oauth_malformed",
    "oauth_refused",
    "oauth_timeout",
    "oauth_reset_consumed",
    "oauth_timeout_consumed",
    "sm_unavailable",
    "sm_lost_answer",
    "sm_outage",
    "sm_outage_refresh_write",
    "duplicate",
    "concurrent",
    "stale_latest",
    "crash_holding_lease",
    "crash_between_writes",
    "crash_after_answer",
] as const;

export type FaultKind = (typeof faultKinds)[number];

export interface FaultInfo {
    /** One line for the table and the README. */
    what: string;
    /** Only meaningful on a tick that calls Bitrix24 (a refresh is due). */
    needsRefresh: boolean;
    /** May spend a refresh token whose successor never reaches Secret Manager: the chain may break, loudly. */
    consumesToken: boolean;
    /** Relative frequency among the kinds that can apply to a tick. */
    weight: number;
}

export const faultCatalogue: Record<FaultKind, FaultInfo> = {
    oauth_html502: { what: "Bitrix24 gateway answers 502 with an HTML page", needsRefresh: true, consumesToken: false, weight: 1 },
    oauth_malformed: { what: "Bitrix24 answers 200 with a truncated JSON body (nothing processed)", needsRefresh: true, consumesToken: false, weight: 1 },
    oauth_refused: { what: "connection refused before the request is sent (token URL points at a closed port)", needsRefresh: true, consumesToken: false, weight: 1 },
    oauth_timeout: { what: "no answer within the response timeout; the server never processed the request", needsRefresh: true, consumesToken: false, weight: 1 },
    oauth_reset_consumed: { what: "connection reset after Bitrix24 processed the refresh (answer lost)", needsRefresh: true, consumesToken: true, weight: 0.5 },
    oauth_timeout_consumed: { what: "Bitrix24 processed the refresh but answered after the timeout", needsRefresh: true, consumesToken: true, weight: 0.5 },
    sm_unavailable: { what: "Secret Manager UNAVAILABLE 1-3 times on one RPC kind (any of the 6 the refresher calls)", needsRefresh: false, consumesToken: false, weight: 2 },
    sm_lost_answer: { what: "Secret Manager applies a write, then the answer is lost (UNAVAILABLE after effect)", needsRefresh: false, consumesToken: false, weight: 1 },
    sm_outage: { what: "Secret Manager UNAVAILABLE on every call of one RPC kind for a whole delivery", needsRefresh: false, consumesToken: false, weight: 0.5 },
    sm_outage_refresh_write: { what: "Secret Manager refuses every write of the new refresh token for a whole delivery", needsRefresh: true, consumesToken: true, weight: 0.25 },
    duplicate: { what: "the same event delivered again 1-30 s later", needsRefresh: false, consumesToken: false, weight: 1 },
    concurrent: { what: "2-5 deliveries of the same tick at once, each its own invocation", needsRefresh: false, consumesToken: false, weight: 1 },
    stale_latest: { what: "versions/latest answers 1-2 versions behind for 1-6 ticks", needsRefresh: false, consumesToken: false, weight: 1 },
    crash_holding_lease: { what: "the process dies right after taking the lease (lease left until it expires)", needsRefresh: false, consumesToken: false, weight: 0.5 },
    crash_between_writes: { what: "the process dies after the first token write, before the second", needsRefresh: true, consumesToken: false, weight: 0.5 },
    crash_after_answer: { what: "the process dies between Bitrix24's answer and the first write", needsRefresh: true, consumesToken: true, weight: 0.5 },
};

export type SecretKind = "refresh" | "access";

/** One RPC kind on one secret, as the emulator sees it. */
export interface RpcTarget {
    method: string;
    secret: SecretKind;
}

/** The RPCs one invocation makes: a fresh tick makes the first three; a due one all of them. */
export function rpcsOfTick(due: boolean): RpcTarget[] {
    const fresh: RpcTarget[] = [
        { method: "GetSecret", secret: "refresh" },
        { method: "UpdateSecret", secret: "refresh" },
        { method: "ListSecretVersions", secret: "refresh" },
    ];
    if (!due) return fresh;
    return [
        ...fresh,
        { method: "AccessSecretVersion", secret: "refresh" },
        { method: "AddSecretVersion", secret: "refresh" },
        { method: "AddSecretVersion", secret: "access" },
        { method: "GetSecret", secret: "access" },
        { method: "UpdateSecret", secret: "access" },
        { method: "ListSecretVersions", secret: "access" },
        { method: "DestroySecretVersion", secret: "refresh" },
        { method: "DestroySecretVersion", secret: "access" },
    ];
}

/** What the harness does to one tick. At most one fault kind per tick. */
export interface TickPlan {
    kind?: FaultKind;
    /** Armed in the emulator before the first delivery. */
    storeFault?: { spec: Omit<FaultSpec, "match">; target: RpcTarget };
    /** Cleared after the first delivery: an outage, over by the time Eventarc redelivers. */
    storeFaultLastsOneDelivery?: boolean;
    sandboxFault?: SandboxFault;
    /** The first delivery's OAuth client points at a closed port. */
    refused?: boolean;
    crash?: "holding_lease" | "between_writes" | "after_answer";
    /** Invocations of the first delivery running at once. */
    concurrency: number;
    /** A second, sequential delivery of the same event this many seconds after the first. */
    duplicateAfterSeconds?: number;
    /** versions/latest lags this many versions for `staleTicks` ticks. */
    stale?: { lag: number; ticks: number };
}

export interface PlanInput {
    random: Random;
    rate: number;
    enabled: ReadonlySet<FaultKind>;
    /** The harness's prediction (from the emulator's state) that this tick calls Bitrix24. */
    due: boolean;
    /** The OAuth call must answer within this, in ms; the slow faults answer later. */
    oauthResponseTimeoutMs: number;
}

export function planTick(input: PlanInput): TickPlan {
    const { random } = input;
    const plan: TickPlan = { concurrency: 1 };
    // Draw the same number of values whatever happens, so one decision never shifts the next tick's faults.
    const roll = random.next();
    const pickRoll = random.next();
    const detailA = random.next();
    const detailB = random.next();
    if (roll >= input.rate) return plan;
    const candidates = faultKinds.filter(
        (kind) => input.enabled.has(kind) && (input.due || !faultCatalogue[kind].needsRefresh),
    );
    if (candidates.length === 0) return plan;
    const total = candidates.reduce((sum, kind) => sum + faultCatalogue[kind].weight, 0);
    let pick = pickRoll * total;
    let kind = candidates[candidates.length - 1]!;
    for (const candidate of candidates) {
        pick -= faultCatalogue[candidate].weight;
        if (pick < 0) {
            kind = candidate;
            break;
        }
    }
    plan.kind = kind;
    const between = (min: number, max: number, u: number) => min + Math.floor(u * (max - min + 1));
    const slowMs = input.oauthResponseTimeoutMs + 400;
    const rpcs = rpcsOfTick(input.due);
    switch (kind) {
        case "oauth_html502":
            plan.sandboxFault = { kind: "html502" };
            break;
        case "oauth_malformed":
            plan.sandboxFault = { kind: "malformed" };
            break;
        case "oauth_refused":
            plan.refused = true;
            break;
        case "oauth_timeout":
            plan.sandboxFault = { kind: "slow", delayMs: slowMs, consume: false };
            break;
        case "oauth_reset_consumed":
            plan.sandboxFault = { kind: "reset", consume: true };
            break;
        case "oauth_timeout_consumed":
            plan.sandboxFault = { kind: "slow", delayMs: slowMs, consume: true };
            break;
        case "sm_unavailable":
            plan.storeFault = { spec: { method: "", code: status.UNAVAILABLE, times: between(1, 3, detailB) }, target: rpcs[between(0, rpcs.length - 1, detailA)]! };
            break;
        case "sm_lost_answer": {
            const writes = rpcs.filter((r) => r.method === "UpdateSecret" || r.method === "AddSecretVersion" || r.method === "DestroySecretVersion");
            plan.storeFault = { spec: { method: "", code: status.UNAVAILABLE, times: 1, afterEffect: true }, target: writes[between(0, writes.length - 1, detailA)]! };
            break;
        }
        case "sm_outage": {
            const targets = rpcs.filter((r) => !(r.method === "AddSecretVersion" && r.secret === "refresh"));
            plan.storeFault = { spec: { method: "", code: status.UNAVAILABLE, times: Infinity }, target: targets[between(0, targets.length - 1, detailA)]! };
            plan.storeFaultLastsOneDelivery = true;
            break;
        }
        case "sm_outage_refresh_write":
            plan.storeFault = { spec: { method: "", code: status.UNAVAILABLE, times: Infinity }, target: { method: "AddSecretVersion", secret: "refresh" } };
            plan.storeFaultLastsOneDelivery = true;
            break;
        case "duplicate":
            plan.duplicateAfterSeconds = between(1, 30, detailA);
            break;
        case "concurrent":
            plan.concurrency = between(2, 5, detailA);
            break;
        case "stale_latest":
            plan.stale = { lag: between(1, 2, detailA), ticks: between(1, 6, detailB) };
            break;
        case "crash_holding_lease":
            plan.crash = "holding_lease";
            break;
        case "crash_between_writes":
            plan.crash = "between_writes";
            break;
        case "crash_after_answer":
            plan.crash = "after_answer";
            break;
    }
    if (plan.storeFault) plan.storeFault.spec = { ...plan.storeFault.spec, method: plan.storeFault.target.method };
    return plan;
}
