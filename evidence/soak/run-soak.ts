// The fault soak: the refresher's real code (core algorithm + real adapters over gRPC and HTTP)
// against the Secret Manager emulator and the Bitrix24 sandbox, under one simulated clock, tick
// after tick of the schedule, with seeded faults. It watches the chain, the access token every
// simulated minute, the version count and every output line, and says which invariant broke.
import { status } from "@grpc/grpc-js";
import { CronExpressionParser } from "cron-parser";
import { createBitrix24OAuthClient } from "../../function/adapters/bitrix24-oauth-client";
import { createJsonLog } from "../../function/adapters/json-log";
import { Redactor } from "../../function/adapters/redactor";
import { createSecretManagerClient, createSecretManagerTokenStore } from "../../function/adapters/secret-manager-store";
import { decideRefresh } from "../../function/core/decide-refresh";
import type { OAuthClient, TokenStore } from "../../function/core/ports";
import { parseRefreshState } from "../../function/core/refresh-state";
import { refreshTokens, TransientRefreshError, type RefreshOutcome } from "../../function/core/refresh-tokens";
import { leaseSeconds, reauthorizeHint } from "../../function/refresh-handler";
import { startBitrix24Sandbox } from "../../local/bitrix24-sandbox/sandbox";
import { startSecretManagerEmulator } from "../../local/secret-manager/emulator";
import { freePort } from "../../local/serve-function";
import { defaultSecretNames, ensureSecrets, storeTokenPair } from "../../local/token-secrets";
import { faultCatalogue, faultKinds, planTick, type FaultKind, type SecretKind, type TickPlan } from "./faults";
import { mulberry32 } from "./prng";
import { brokenPorts, crashingPorts, SimulatedProcess, type BreakMode } from "./wrappers";

const minuteMs = 60_000;
const dayMs = 24 * 60 * minuteMs;
const projectId = "soak-project";
/** Eventarc's Pub/Sub subscription: exponential backoff from 10 s to 600 s. */
const redeliveryMinSeconds = 10;
const redeliveryMaxSeconds = 600;
/** A broken chain nobody was told about is noticed by a human this long after it broke (silent: a failure). */
const silentNoticeMs = dayMs;
/** An outage outlasts any retry budget: a short one gives the same outcome and costs less real time. */
const outageRetryBudgetMs = 300;
/** Faults this long before a minute without a valid access token are named as its likely cause. */
const blameWindowMs = 60 * minuteMs;

export interface SoakOptions {
    days: number;
    /** Probability that a tick gets a fault. */
    rate: number;
    seed: number;
    /** Fault kinds that may be drawn. */
    faults: readonly FaultKind[];
    breakMode?: BreakMode;
    /** Deliveries arrive up to this many seconds after their tick (seeded). */
    jitterSeconds: number;
    /** How long after the CRITICAL line the simulated human re-authorizes. */
    humanDelayMinutes: number;
    schedule: string;
    marginSeconds: number;
    keepVersions: number;
    storeRetryBudgetMs: number;
    oauthResponseTimeoutMs: number;
    /** Simulate proposed changes to the refresher (see `whatIfs`), to put numbers on them. */
    whatIf?: readonly WhatIf[];
    /** Called about once per simulated day. */
    progress?: (line: string) => void;
}

export const whatIfs = {
    "short-lease": "the lease lasts 150 s (function timeout 120 s + 30 s) instead of 300 s",
} as const;
export type WhatIf = keyof typeof whatIfs;

export const soakDefaults = {
    days: 30,
    rate: 0.1,
    seed: 1,
    faults: faultKinds,
    jitterSeconds: 0,
    humanDelayMinutes: 30,
    schedule: "*/10 * * * *",
    marginSeconds: 1200,
    keepVersions: 2,
    // Small, so injected UNAVAILABLE faults cost little real time, yet enough for 3 failures in a row.
    storeRetryBudgetMs: 1500,
    oauthResponseTimeoutMs: 800,
} satisfies Omit<SoakOptions, "progress" | "breakMode">;

export interface FaultCount {
    injected: number;
    fired: number;
}

export interface Incident {
    /** Simulated ms when the harness saw the chain broken. */
    at: number;
    /** A fault that may spend a token fired since the chain was last seen whole. */
    consumed: boolean;
    /** Fault kinds that fired since the chain was last seen whole. */
    faults: string[];
    critical: boolean;
    closedBy?: "refresher" | "human";
}

export interface Gap {
    /** Simulated ms of the first minute without a valid access token. */
    at: number;
    minutes: number;
    /** Fault kinds that fired in the hour before. */
    after: string[];
}

export interface SoakStats {
    ticks: number;
    invocations: number;
    redeliveries: number;
    outcomes: Record<RefreshOutcome["kind"] | "transient" | "crashed" | "unexpected", number>;
    faults: Record<FaultKind, FaultCount>;
    /** lease_busy answers where the lease was the invocation's own (its UpdateSecret landed, the answer was lost). */
    ownLeaseBusy: number;
    /** Secret Manager calls answered with an injected UNAVAILABLE, by RPC. */
    unavailableByRpc: Record<string, number>;
    /** Token calls that spent a refresh token without answering, with no fault injected (a machine too slow for the timeout). */
    unplannedConsumption: number;
    incidents: Incident[];
    reauthorizations: number;
    criticalLines: number;
    falseAlarms: number;
    minutes: { total: number; valid: number; invalid: number; awaitingReauthorization: number };
    /** Runs of consecutive minutes without a valid access token (outside re-authorization waits). */
    gaps: Gap[];
    oauthCallsPerDay: number[];
    peakActiveVersions: Record<SecretKind, number>;
    /** Observations above KEEP_VERSIONS + 1 active versions, with the faults (and re-authorizations) of the hour before. */
    versionExcess: Array<{ at: number; refresh: number; access: number; after: string[] }>;
    latestReads: number;
    outputLines: number;
    linesWithSecret: number;
    realSeconds: number;
}

export interface Invariant {
    name: string;
    ok: boolean;
    detail: string;
}

export interface SoakResult {
    options: SoakOptions;
    stats: SoakStats;
    invariants: Invariant[];
    ok: boolean;
    /** Every line the refresher printed and every error it threw (message and stack), in order. */
    output: string[];
    /** Every token the sandbox issued, every stored payload, and the client secret. */
    secrets: string[];
}

interface Delivery {
    at: number;
    eventId: string;
    attempt: number;
    concurrency: number;
    /** The tick's first delivery: the per-delivery faults of the plan apply to it. */
    first: boolean;
}

type QueuedEvent =
    | { at: number; rank: 0; type: "delivery"; delivery: Delivery }
    | { at: number; rank: 1; type: "reauthorize" }
    | { at: number; rank: 2; type: "check" };

type InvocationResult = { kind: "outcome"; outcome: RefreshOutcome } | { kind: "error"; error: unknown } | { kind: "crashed" };

function tickTimes(schedule: string, from: number, to: number): number[] {
    const expression = CronExpressionParser.parse(schedule, { currentDate: new Date(from - 1), tz: "UTC" });
    const times: number[] = [];
    for (;;) {
        const next = expression.next().getTime();
        if (next >= to) return times;
        times.push(next);
    }
}

export function validateSoakOptions(options: SoakOptions): string[] {
    const problems: string[] = [];
    if (!(options.days > 0 && options.days <= 366)) problems.push(`--days must be a number above 0 and at most 366 (0.5 = 12 hours), got ${options.days}`);
    if (!(options.rate >= 0 && options.rate <= 1)) problems.push(`--rate must be a number from 0 to 1 (0.1 = 10% of ticks), got ${options.rate}`);
    if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) problems.push(`--seed must be a whole number from 0 to 4294967295, got ${options.seed}`);
    if (!(options.jitterSeconds >= 0 && options.jitterSeconds <= 300)) problems.push(`--jitter must be from 0 to 300 seconds, got ${options.jitterSeconds}`);
    if (!(options.humanDelayMinutes >= 0 && options.humanDelayMinutes <= 7 * 24 * 60)) problems.push(`--human-delay must be from 0 to 10080 minutes, got ${options.humanDelayMinutes}`);
    const unknownWhatIf = (options.whatIf ?? []).filter((w) => !(w in whatIfs));
    if (unknownWhatIf.length > 0) problems.push(`--what-if: unknown change ${unknownWhatIf.join(", ")}; known: ${Object.keys(whatIfs).join(", ")}`);
    const unknown = options.faults.filter((kind) => !(faultKinds as readonly string[]).includes(kind));
    if (unknown.length > 0) problems.push(`--faults: unknown kind ${unknown.join(", ")}; known: ${faultKinds.join(", ")}`);
    try {
        CronExpressionParser.parse(options.schedule, { tz: "UTC" });
    } catch {
        problems.push(`--schedule "${options.schedule}" is not a cron expression`);
    }
    return problems;
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
    const problems = validateSoakOptions(options);
    if (problems.length > 0) throw new RangeError(problems.join("; "));
    const realStart = performance.now();
    const faultRandom = mulberry32(options.seed);
    const jitterRandom = mulberry32(options.seed ^ 0x9e3779b9);
    const enabled = new Set(options.faults);

    const start = Date.UTC(2025, 0, 6); // a Monday
    const end = start + options.days * dayMs;
    let nowMs = start - 5 * minuteMs;
    const clock = { now: () => nowMs };

    const emulator = await startSecretManagerEmulator({ now: () => new Date(nowMs) });
    const sandbox = await startBitrix24Sandbox({ now: () => nowMs });
    const client = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    const closedTokenUrl = `http://127.0.0.1:${await freePort()}/oauth/token/`;
    const secretName = (kind: SecretKind) => `projects/${projectId}/secrets/${defaultSecretNames[kind]}`;
    /** A call's resource is the secret itself or one of its versions. */
    const isOfSecret = (resource: string, kind: SecretKind) => resource === secretName(kind) || resource.startsWith(`${secretName(kind)}/`);
    const hints = { reauthorize: reauthorizeHint({ projectId, clientId: sandbox.clientId, portalDomain: sandbox.portalDomain }) };

    const stats: SoakStats = {
        ticks: 0,
        invocations: 0,
        redeliveries: 0,
        outcomes: { refreshed: 0, fresh: 0, lease_busy: 0, needs_attention: 0, transient: 0, crashed: 0, unexpected: 0 },
        faults: Object.fromEntries(faultKinds.map((kind) => [kind, { injected: 0, fired: 0 }])) as Record<FaultKind, FaultCount>,
        unavailableByRpc: {},
        ownLeaseBusy: 0,
        unplannedConsumption: 0,
        incidents: [],
        reauthorizations: 0,
        criticalLines: 0,
        falseAlarms: 0,
        minutes: { total: 0, valid: 0, invalid: 0, awaitingReauthorization: 0 },
        gaps: [],
        oauthCallsPerDay: [],
        peakActiveVersions: { refresh: 0, access: 0 },
        versionExcess: [],
        latestReads: 0,
        outputLines: 0,
        linesWithSecret: 0,
        realSeconds: 0,
    };
    const output: string[] = [];
    let newCriticals = 0;
    const capture = (line: string) => {
        output.push(line);
        stats.outputLines++;
        if (line.includes('"severity":"CRITICAL"')) {
            stats.criticalLines++;
            newCriticals++;
        }
    };

    // What the harness knows about the world between deliveries.
    let newestAccessToken: string | undefined;
    let incident: Incident | undefined;
    let firedSinceWhole: string[] = [];
    let consumingSinceWhole = false;
    let tokenCallsSeen = 0;
    let reauthorizeAt: number | undefined;
    let staleTicksLeft = 0;
    const recentFaults: Array<{ at: number; kind: string }> = [];
    let openGap: Gap | undefined;

    // Per tick: its plan and what fired.
    let plan: TickPlan = { concurrency: 1 };
    let planFired = false;
    let crashFired = false;
    let refusedFired = false;
    let segmentTokenCalls = 0;

    const activeVersions = (versions: Array<{ state: string }>) => versions.filter((v) => v.state !== "DESTROYED").length;
    const newestEnabled = (versions: Array<{ number: number; state: string; payload?: string }>) =>
        versions.filter((v) => v.state === "ENABLED").sort((a, b) => b.number - a.number)[0];

    function checkPlanFired(): void {
        if (!plan.kind || planFired) return;
        let fired = false;
        if (plan.storeFault) {
            const target = plan.storeFault.target;
            fired = emulator.calls.some((c) => c.method === target.method && isOfSecret(c.name, target.secret) && c.code === status.UNAVAILABLE);
        } else if (plan.sandboxFault) {
            fired = sandbox.tokenCalls.slice(segmentTokenCalls).some((c) => c.fault !== undefined && c.grantType === "refresh_token");
        } else if (plan.refused) fired = refusedFired;
        else if (plan.crash) fired = crashFired;
        else fired = true; // duplicate, concurrent, stale_latest: fired when applied
        if (!fired) return;
        planFired = true;
        stats.faults[plan.kind].fired++;
        recentFaults.push({ at: nowMs, kind: plan.kind });
        while (recentFaults.length > 0 && recentFaults[0]!.at < nowMs - blameWindowMs) recentFaults.shift();
        firedSinceWhole.push(plan.kind);
        if (faultCatalogue[plan.kind].consumesToken) consumingSinceWhole = true;
    }

    /** Looks at the world after something wrote to it. */
    function observe(afterRefresher: boolean): void {
        checkPlanFired();
        for (const call of sandbox.tokenCalls.slice(tokenCallsSeen)) {
            if (call.grantType === "refresh_token" && call.consumed && !call.delivered && call.fault === undefined) {
                stats.unplannedConsumption++;
                consumingSinceWhole = true;
                firedSinceWhole.push("unplanned_timeout");
            }
        }
        tokenCallsSeen = sandbox.tokenCalls.length;
        const refresh = emulator.inspect(secretName("refresh"))!;
        const access = emulator.inspect(secretName("access"))!;
        if (afterRefresher) {
            const active = { refresh: activeVersions(refresh.versions), access: activeVersions(access.versions) };
            stats.peakActiveVersions.refresh = Math.max(stats.peakActiveVersions.refresh, active.refresh);
            stats.peakActiveVersions.access = Math.max(stats.peakActiveVersions.access, active.access);
            if (Math.max(active.refresh, active.access) > options.keepVersions + 1) {
                const after = [...new Set(recentFaults.filter((f) => f.at >= nowMs - blameWindowMs).map((f) => f.kind))];
                stats.versionExcess.push({ at: nowMs, ...active, after });
            }
        }
        newestAccessToken = newestEnabled(access.versions)?.payload;
        const storedRefresh = newestEnabled(refresh.versions)?.payload;
        const whole = storedRefresh !== undefined && storedRefresh === sandbox.liveRefreshToken();
        if (whole) {
            if (incident) {
                incident.closedBy = afterRefresher ? "refresher" : "human";
                incident = undefined;
                reauthorizeAt = undefined;
            }
            firedSinceWhole = [];
            consumingSinceWhole = false;
        } else if (!incident) {
            incident = { at: nowMs, consumed: consumingSinceWhole, faults: [...new Set(firedSinceWhole)], critical: false };
            stats.incidents.push(incident);
            reauthorizeAt = nowMs + silentNoticeMs;
        }
        if (newCriticals > 0) {
            if (incident) {
                if (!incident.critical) reauthorizeAt = nowMs + options.humanDelayMinutes * minuteMs;
                incident.critical = true;
            } else stats.falseAlarms += newCriticals;
            newCriticals = 0;
        }
    }

    /** What a human does after the CRITICAL alert: authorize the app again and store the new pair. */
    async function reauthorize(): Promise<void> {
        emulator.clearFaults();
        const pair = sandbox.authorize();
        await storeTokenPair(client, projectId, pair);
        stats.reauthorizations++;
        recentFaults.push({ at: nowMs, kind: "re-authorization" });
        observe(false);
    }

    function predictDue(at: number): boolean {
        const refresh = emulator.inspect(secretName("refresh"))!;
        const state = parseRefreshState(refresh.annotations);
        if (state.lease && state.lease.expiresAt > at) return false;
        const listed = newestEnabled(refresh.versions)?.number;
        const recorded = state.pair?.refreshVersion;
        const newest = listed === undefined || (recorded !== undefined && recorded > listed) ? recorded : listed;
        if (newest === undefined) return false;
        if (state.failure && state.failure.refreshVersion === newest) return false;
        return decideRefresh({ pair: state.pair, newestRefreshVersion: newest, nowMs: at, marginSeconds: options.marginSeconds }).due;
    }

    async function invoke(delivery: Delivery, index: number): Promise<InvocationResult> {
        stats.invocations++;
        const applyPlan = delivery.first && index === 0;
        const proc = new SimulatedProcess();
        const redactor = new Redactor();
        const realLog = createJsonLog(redactor, capture);
        const realStore = createSecretManagerTokenStore({
            client,
            projectId,
            secrets: { refresh: defaultSecretNames.refresh, access: defaultSecretNames.access },
            retryBudgetMs: applyPlan && plan.storeFaultLastsOneDelivery ? outageRetryBudgetMs : options.storeRetryBudgetMs,
            redactor,
        });
        const refused = applyPlan && plan.refused === true;
        const realOAuth = createBitrix24OAuthClient({
            tokenUrl: refused ? closedTokenUrl : sandbox.tokenUrl,
            clientId: sandbox.clientId,
            clientSecret: sandbox.clientSecret,
            responseTimeoutMs: options.oauthResponseTimeoutMs,
            clock,
            redactor,
        });
        const oauth: OAuthClient = refused
            ? {
                  refresh(token) {
                      refusedFired = true;
                      return realOAuth.refresh(token);
                  },
              }
            : realOAuth;
        let ports: { store: TokenStore; oauth: OAuthClient; log: typeof realLog } = crashingPorts(
            proc,
            realStore,
            oauth,
            realLog,
            applyPlan ? plan.crash : undefined,
            () => (crashFired = true),
        );
        if (options.breakMode) {
            ports = {
                ...ports,
                ...brokenPorts(options.breakMode, ports.store, ports.oauth, {
                    nextRefreshVersion: () => emulator.inspect(secretName("refresh"))!.versions.length + 1,
                    rawLine: capture,
                }),
            };
        }
        const holder = `${delivery.eventId}/${delivery.attempt}.${index}#${stats.invocations}`; // unique, as the handler's UUID
        const run: Promise<InvocationResult> = refreshTokens(
            { ...ports, clock },
            {
                marginSeconds: options.marginSeconds,
                keepVersions: options.keepVersions,
                leaseSeconds: options.whatIf?.includes("short-lease") ? 150 : leaseSeconds,
                holder,
                criticalRepeatSeconds: 3600,
                hints,
            },
        ).then(
            (outcome) => ({ kind: "outcome", outcome }),
            (error: unknown) => ({ kind: "error", error }),
        );
        const result = await Promise.race([run, proc.died.then((): InvocationResult => ({ kind: "crashed" }))]);
        if (result.kind === "outcome") {
            stats.outcomes[result.outcome.kind]++;
            const lease = parseRefreshState(emulator.inspect(secretName("refresh"))!.annotations).lease;
            if (result.outcome.kind === "lease_busy" && lease?.holder === holder) stats.ownLeaseBusy++;
        }
        else if (result.kind === "crashed") stats.outcomes.crashed++;
        else {
            // The functions framework prints a thrown error: it is output too.
            const error = result.error;
            output.push(error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error));
            if (error instanceof TransientRefreshError) stats.outcomes.transient++;
            else stats.outcomes.unexpected++;
        }
        return result;
    }

    /** Plays one stretch of simulated time [from, to): a tick at `from` (if `tick`), its deliveries, minute checks, a human. */
    /** Tallies the emulator's call record before it is cleared. */
    function tallyCalls(): void {
        for (const call of emulator.calls) {
            if (call.method === "AccessSecretVersion" && call.name.endsWith("/latest")) stats.latestReads++;
            if (call.code === status.UNAVAILABLE) stats.unavailableByRpc[call.method] = (stats.unavailableByRpc[call.method] ?? 0) + 1;
        }
        emulator.clearCalls();
    }

    async function runSegment(from: number, to: number, tick: boolean): Promise<void> {
        tallyCalls();
        segmentTokenCalls = sandbox.tokenCalls.length;
        plan = { concurrency: 1 };
        planFired = false;
        crashFired = false;
        refusedFired = false;
        const queue: QueuedEvent[] = [];

        if (tick) {
            stats.ticks++;
            if (staleTicksLeft > 0 && --staleTicksLeft === 0) {
                for (const kind of ["refresh", "access"] as const) emulator.staleLatest(secretName(kind), 0);
            }
            const at = from + Math.floor(jitterRandom.next() * options.jitterSeconds * 1000);
            plan = planTick({
                random: faultRandom,
                rate: options.rate,
                enabled,
                due: predictDue(at),
                oauthResponseTimeoutMs: options.oauthResponseTimeoutMs,
            });
            if (plan.kind) stats.faults[plan.kind].injected++;
            if (plan.storeFault) {
                const secret = plan.storeFault.target.secret;
                emulator.injectFault({ ...plan.storeFault.spec, match: (resource) => isOfSecret(resource, secret) });
            }
            if (plan.sandboxFault) sandbox.failNext(plan.sandboxFault);
            if (plan.stale) {
                for (const kind of ["refresh", "access"] as const) emulator.staleLatest(secretName(kind), plan.stale.lag);
                staleTicksLeft = plan.stale.ticks;
            }
            const eventId = `tick-${stats.ticks}`;
            queue.push({ at, rank: 0, type: "delivery", delivery: { at, eventId, attempt: 0, concurrency: plan.concurrency, first: true } });
            if (plan.duplicateAfterSeconds !== undefined) {
                const dupAt = at + plan.duplicateAfterSeconds * 1000;
                if (dupAt < to) queue.push({ at: dupAt, rank: 0, type: "delivery", delivery: { at: dupAt, eventId, attempt: 0, concurrency: 1, first: false } });
            }
        }
        for (let m = Math.ceil(from / minuteMs) * minuteMs; m < to; m += minuteMs) queue.push({ at: m, rank: 2, type: "check" });

        let reauthQueued = false;
        for (;;) {
            if (!reauthQueued && reauthorizeAt !== undefined && reauthorizeAt < to) {
                queue.push({ at: Math.max(reauthorizeAt, from), rank: 1, type: "reauthorize" });
                reauthQueued = true;
            }
            if (queue.length === 0) break;
            let index = 0;
            for (let i = 1; i < queue.length; i++) {
                const a = queue[i]!;
                const b = queue[index]!;
                if (a.at < b.at || (a.at === b.at && a.rank < b.rank)) index = i;
            }
            const event = queue.splice(index, 1)[0]!;
            nowMs = event.at;
            if (event.type === "check") {
                stats.minutes.total++;
                if (incident?.consumed) {
                    stats.minutes.awaitingReauthorization++;
                    openGap = undefined;
                } else if (newestAccessToken !== undefined && sandbox.isLiveAccessToken(newestAccessToken)) {
                    stats.minutes.valid++;
                    openGap = undefined;
                } else {
                    stats.minutes.invalid++;
                    if (openGap) openGap.minutes++;
                    else {
                        const after = [...new Set(recentFaults.filter((f) => f.at >= nowMs - blameWindowMs).map((f) => f.kind))];
                        openGap = { at: nowMs, minutes: 1, after };
                        stats.gaps.push(openGap);
                    }
                }
            } else if (event.type === "reauthorize") {
                reauthQueued = false;
                if (reauthorizeAt !== undefined && reauthorizeAt <= nowMs) {
                    reauthorizeAt = undefined;
                    await reauthorize();
                }
            } else {
                const { delivery } = event;
                const results = await Promise.all(Array.from({ length: delivery.concurrency }, (_, i) => invoke(delivery, i)));
                if (delivery.first && plan.storeFaultLastsOneDelivery) emulator.clearFaults();
                observe(true);
                for (const result of results) {
                    if (result.kind === "outcome") continue; // 2xx: Eventarc is done with this event
                    const backoff = Math.min(redeliveryMaxSeconds, redeliveryMinSeconds * 2 ** delivery.attempt) * 1000;
                    const at = nowMs + backoff;
                    if (at >= to) continue; // the next tick supersedes it
                    stats.redeliveries++;
                    queue.push({ at, rank: 0, type: "delivery", delivery: { at, eventId: delivery.eventId, attempt: delivery.attempt + 1, concurrency: 1, first: false } });
                }
            }
        }

        // Nothing planned for this tick may leak into the next one.
        emulator.clearFaults();
        checkPlanFired();
        if (plan.sandboxFault && !planFired) await drainSandboxFault();
    }

    async function drainSandboxFault(): Promise<void> {
        try {
            const response = await fetch(sandbox.tokenUrl, {
                method: "POST",
                headers: { "content-type": "application/x-www-form-urlencoded" },
                body: "grant_type=drain",
            });
            await response.arrayBuffer();
        } catch {
            // a reset fault answers with a destroyed socket
        }
        tokenCallsSeen = sandbox.tokenCalls.length;
    }

    try {
        await ensureSecrets(client, projectId);
        await reauthorize(); // the first authorization, before the first tick
        stats.reauthorizations = 0;
        recentFaults.length = 0;
        const ticks = tickTimes(options.schedule, start, end);
        const leadIn = ticks[0] !== start; // a schedule whose first tick comes after the start: check those minutes too
        const boundaries = [...(leadIn ? [start] : []), ...ticks, end];
        let nextProgressDay = 1;
        for (let i = 0; i + 1 < boundaries.length; i++) {
            await runSegment(boundaries[i]!, boundaries[i + 1]!, !(leadIn && i === 0));
            const day = Math.floor((boundaries[i + 1]! - start) / dayMs);
            if (day >= nextProgressDay) {
                nextProgressDay = day + 1;
                const firedFaults = Object.values(stats.faults).reduce((sum, f) => sum + f.fired, 0);
                options.progress?.(
                    `soak: day ${day}/${options.days} (${Math.round((100 * day) / options.days)}%): ${stats.ticks} ticks, ` +
                        `${stats.outcomes.refreshed} refreshes, ${firedFaults} faults, ${stats.incidents.length} chain breaks, ` +
                        `${((performance.now() - realStart) / 1000).toFixed(1)} s`,
                );
            }
        }
        tallyCalls();
    } finally {
        await client.close();
        await sandbox.stop();
        await emulator.stop();
    }

    for (const call of sandbox.tokenCalls) {
        if (call.grantType !== "refresh_token" || call.at < start) continue;
        const day = Math.floor((call.at - start) / dayMs);
        while (stats.oauthCallsPerDay.length <= day) stats.oauthCallsPerDay.push(0);
        stats.oauthCallsPerDay[day]!++;
    }
    while (stats.oauthCallsPerDay.length < options.days) stats.oauthCallsPerDay.push(0);

    const secrets = new Set<string>([sandbox.clientSecret, ...sandbox.issuedTokens()]);
    for (const kind of ["refresh", "access"] as const) {
        for (const v of emulator.inspect(secretName(kind))?.versions ?? []) if (v.payload) secrets.add(v.payload);
    }
    stats.linesWithSecret = countTextsWithSecret(output, [...secrets]);
    stats.realSeconds = (performance.now() - realStart) / 1000;
    const invariants = checkInvariants(options, stats);
    return { options, stats, invariants, ok: invariants.every((i) => i.ok), output, secrets: [...secrets] };
}

/**
 * How many texts contain a secret. The sandbox's tokens are 70 hex characters: every hex run of a
 * text is cut into windows and looked up, so thousands of tokens cost no more than one. Other
 * values (the client secret) are searched for directly. No Redactor is involved.
 */
export function countTextsWithSecret(texts: readonly string[], secrets: readonly string[]): number {
    const hexByLength = new Map<number, Set<string>>();
    const others: string[] = [];
    for (const secret of secrets) {
        if (secret.length < 6) continue;
        if (/^[0-9a-f]+$/.test(secret)) {
            if (!hexByLength.has(secret.length)) hexByLength.set(secret.length, new Set());
            hexByLength.get(secret.length)!.add(secret);
        } else others.push(secret);
    }
    const shortest = Math.min(...hexByLength.keys());
    let count = 0;
    for (const text of texts) {
        let found = others.some((secret) => text.includes(secret));
        if (!found && hexByLength.size > 0) {
            for (const match of text.matchAll(new RegExp(`[0-9a-f]{${shortest},}`, "g"))) {
                const run = match[0];
                for (const [length, set] of hexByLength) {
                    for (let i = 0; !found && i + length <= run.length; i++) found = set.has(run.slice(i, i + length));
                }
                if (found) break;
            }
        }
        if (found) count++;
    }
    return count;
}

export const availabilityTarget = 0.999;
export const oauthCallsPerDayLimit = 30;

export function checkInvariants(options: SoakOptions, stats: SoakStats): Invariant[] {
    const broken = stats.incidents.filter((i) => !i.consumed);
    const consumed = stats.incidents.filter((i) => i.consumed);
    const silent = consumed.filter((i) => !i.critical && i.closedBy !== "refresher");
    const counted = stats.minutes.total - stats.minutes.awaitingReauthorization;
    const availability = counted === 0 ? 1 : stats.minutes.valid / counted;
    const peak = Math.max(stats.peakActiveVersions.refresh, stats.peakActiveVersions.access);
    const maxPerDay = Math.max(0, ...stats.oauthCallsPerDay);
    const faultFree = options.rate === 0;
    return [
        {
            name: "no broken chain from a fault that does not spend a token",
            ok: broken.length === 0,
            detail: broken.length === 0 ? "0" : broken.map((i) => `${new Date(i.at).toISOString()} after ${i.faults.join("+") || "no fault"}`).join("; "),
        },
        {
            name: "every spent token reported (CRITICAL) or recovered",
            ok: silent.length === 0,
            detail: `${consumed.length} spent, ${consumed.filter((i) => i.critical).length} CRITICAL, ${consumed.filter((i) => i.closedBy === "refresher").length} recovered, ${silent.length} silent`,
        },
        {
            name: `valid access token >= ${(availabilityTarget * 100).toFixed(1)}% of minutes`,
            ok: availability >= availabilityTarget,
            detail: `${(availability * 100).toFixed(3)}% (${stats.minutes.invalid} of ${counted} minutes without)`,
        },
        {
            name: `active versions per secret <= KEEP_VERSIONS + 1 (${options.keepVersions + 1})`,
            ok: peak <= options.keepVersions + 1,
            detail:
                `peak refresh ${stats.peakActiveVersions.refresh}, access ${stats.peakActiveVersions.access}` +
                stats.versionExcess
                    .slice(0, 5)
                    .map((e) => `; ${e.refresh}/${e.access} at ${new Date(e.at).toISOString()} after ${e.after.join("+") || "no fault"}`)
                    .join(""),
        },
        {
            name: `OAuth refresh calls per day <= ${oauthCallsPerDayLimit}${faultFree ? "" : " (checked in fault-free runs only)"}`,
            ok: !faultFree || maxPerDay <= oauthCallsPerDayLimit,
            detail: `max ${maxPerDay}`,
        },
        { name: "no secret in any output line or error", ok: stats.linesWithSecret === 0, detail: `${stats.linesWithSecret} of ${stats.outputLines} lines` },
        { name: "no CRITICAL while the chain is whole (no false alarm)", ok: stats.falseAlarms === 0, detail: String(stats.falseAlarms) },
        { name: "reads by version number only (no versions/latest)", ok: stats.latestReads === 0, detail: `${stats.latestReads} reads of latest` },
        { name: "only transient errors thrown", ok: stats.outcomes.unexpected === 0, detail: `${stats.outcomes.unexpected} unexpected` },
    ];
}
