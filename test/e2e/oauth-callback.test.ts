// The `oauthCallback` entry point on the built bundle under the real functions framework (HTTP
// signature), with the real Secret Manager client against the emulator and got against the sandbox.
// The test plays Bitrix24's browser redirect and its ONAPPINSTALL post, then every hostile variant.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createSecretManagerClient } from "../../function/adapters/secret-manager-store";
import { callbackState } from "../../function/core/authorization";
import { startBitrix24Sandbox, type Bitrix24Sandbox } from "../../local/bitrix24-sandbox/sandbox";
import { startSecretManagerEmulator, type SecretManagerEmulator } from "../../local/secret-manager/emulator";
import { freePort, serveFunction, type ServedFunction } from "../../local/serve-function";
import { defaultSecretNames, ensureSecrets } from "../../local/token-secrets";
import { expectNoSecrets } from "../helpers/no-secrets";
import { assertBundleBuilt, bundleDir, functionTestEnv, projectId, repoRoot } from "../helpers/system";

const loopbackGuard = `${repoRoot}/test/helpers/loopback-guard.cjs`;
const refreshSecret = `projects/${projectId}/secrets/${defaultSecretNames.refresh}`;
const accessSecret = `projects/${projectId}/secrets/${defaultSecretNames.access}`;

let emulator: SecretManagerEmulator;
let sandbox: Bitrix24Sandbox;
let client: SecretManagerServiceClient;
let fn: ServedFunction;
/** A second instance with B24_MEMBER_ID configured. */
let fnWithMember: ServedFunction;
/** Values that must never show up in a log line: forged tokens and application tokens the test made up. */
const madeUp: string[] = [];

beforeAll(async () => {
    assertBundleBuilt();
    emulator = await startSecretManagerEmulator();
    const port = await freePort();
    // The app's redirect address ("Your handler path") is the function's URL.
    sandbox = await startBitrix24Sandbox({ redirectUri: `http://127.0.0.1:${port}/` });
    client = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    await ensureSecrets(client, projectId);
    const env = functionTestEnv(sandbox, emulator);
    const options = { dir: bundleDir, target: "oauthCallback", signatureType: "http" as const, nodeOptions: `--require ${loopbackGuard}` };
    [fn, fnWithMember] = await Promise.all([
        serveFunction({ ...options, port, env }),
        serveFunction({ ...options, env: { ...env, B24_MEMBER_ID: sandbox.memberId } }),
    ]);
});

afterAll(async () => {
    await Promise.all([fn?.stop(), fnWithMember?.stop()]);
    await client?.close();
    const secrets = [sandbox.clientSecret, ...sandbox.issuedTokens(), ...madeUp];
    for (const name of [refreshSecret, accessSecret]) for (const v of emulator.inspect(name)?.versions ?? []) if (v.payload) secrets.push(v.payload);
    await sandbox?.stop();
    await emulator?.stop();
    // No token, code, application token or client secret in any line either function printed.
    expectNoSecrets([...fn.lines, ...fnWithMember.lines], secrets);
    expect([...fn.lines, ...fnWithMember.lines].filter((l) => l.includes("loopback guard"))).toEqual([]);
});

interface Snapshot {
    refresh: number;
    access: number;
    annotations: Record<string, string>;
    tokenCalls: number;
}

function snapshot(): Snapshot {
    return {
        refresh: emulator.inspect(refreshSecret)?.versions.length ?? 0,
        access: emulator.inspect(accessSecret)?.versions.length ?? 0,
        annotations: { ...(emulator.inspect(refreshSecret)?.annotations ?? {}) },
        tokenCalls: sandbox.tokenCalls.length,
    };
}

function newest(name: string): string | undefined {
    return [...(emulator.inspect(name)?.versions ?? [])].filter((v) => v.state === "ENABLED").sort((a, b) => b.number - a.number)[0]?.payload;
}

function entries(served: ServedFunction, from: number): Array<Record<string, unknown>> {
    return served.lines.slice(from).flatMap((line) => {
        try {
            return [JSON.parse(line) as Record<string, unknown>];
        } catch {
            return [];
        }
    });
}

const state = () => callbackState({ clientId: sandbox.clientId, clientSecret: sandbox.clientSecret, portalDomain: sandbox.portalDomain });

/** Plays the browser: opens the authorize address on the sandbox, returns the redirect's query. */
async function redirectQuery(withState: string | undefined): Promise<URLSearchParams> {
    const query = new URLSearchParams({ client_id: sandbox.clientId });
    if (withState !== undefined) query.set("state", withState);
    const response = await fetch(`${sandbox.url}/oauth/authorize/?${query}`, { redirect: "manual" });
    await response.arrayBuffer();
    return new URL(response.headers.get("location")!).searchParams;
}

function installBody(overrides: Record<string, string | undefined> = {}): { body: string; applicationToken: string } {
    const pair = sandbox.authorize();
    const applicationToken = randomBytes(16).toString("hex");
    madeUp.push(applicationToken);
    const fields: Record<string, string | undefined> = {
        event: "ONAPPINSTALL",
        "data[VERSION]": "1",
        "data[ACTIVE]": "Y",
        "data[INSTALLED]": "Y",
        "data[LANGUAGE_ID]": "en",
        ts: String(Math.floor(Date.now() / 1000)),
        "auth[access_token]": pair.accessToken,
        "auth[expires]": String(pair.expires),
        "auth[expires_in]": "3600",
        "auth[scope]": "crm,user",
        "auth[domain]": sandbox.portalDomain,
        "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
        "auth[status]": "L",
        "auth[client_endpoint]": `https://${sandbox.portalDomain}/rest/`,
        "auth[member_id]": sandbox.memberId,
        "auth[user_id]": "1",
        "auth[refresh_token]": pair.refreshToken,
        "auth[application_token]": applicationToken,
        ...overrides,
    };
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, v);
    return { body: form.toString(), applicationToken };
}

async function post(served: ServedFunction, body: string, contentType = "application/x-www-form-urlencoded") {
    const response = await fetch(`${served.url}/`, { method: "POST", headers: { "content-type": contentType }, body });
    return { status: response.status, html: await response.text(), type: response.headers.get("content-type") };
}

async function get(served: ServedFunction, query: URLSearchParams) {
    const response = await fetch(`${served.url}/?${query}`);
    return { status: response.status, html: await response.text(), type: response.headers.get("content-type") };
}

describe("oauthCallback stores a pair with no human step", () => {
    it("the OAuth redirect: exchanges the code at once and stores the pair where the refresher looks", async () => {
        const before = snapshot();
        const from = fn.lines.length;
        const answer = await get(fn, await redirectQuery(state()));

        expect(answer.status).toBe(200);
        expect(answer.type).toMatch(/^text\/html/);
        expect(answer.html).toMatch(/Bitrix24 authorized/);
        expect(newest(refreshSecret)).toBe(sandbox.liveRefreshToken());
        expect(sandbox.isLiveAccessToken(newest(accessSecret)!)).toBe(true);
        const after = snapshot();
        expect(after.refresh).toBe(before.refresh + 1);
        expect(after.annotations).toMatchObject({
            "b24-refresh-version": String(after.refresh),
            "b24-access-version": String(after.access),
            "b24-authorized-via": "redirect",
            "b24-member-id": sandbox.memberId,
        });
        expect(after.annotations["b24-lease-holder"]).toBeUndefined();
        expect(entries(fn, from)).toContainEqual(expect.objectContaining({ severity: "NOTICE", event: "authorize.stored", via: "redirect" }));
    });

    it("ONAPPINSTALL: redeems the event's refresh token once, stores the new pair and the application_token's hash", async () => {
        const before = snapshot();
        const refreshes = sandbox.refreshCount();
        const { body, applicationToken } = installBody();
        const answer = await post(fnWithMember, body);

        expect(answer.status).toBe(200);
        expect(sandbox.refreshCount()).toBe(refreshes + 1);
        expect(newest(refreshSecret)).toBe(sandbox.liveRefreshToken());
        expect(sandbox.isLiveAccessToken(newest(accessSecret)!)).toBe(true);
        const after = snapshot();
        expect(after.refresh).toBe(before.refresh + 1);
        expect(after.annotations).toMatchObject({
            "b24-refresh-version": String(after.refresh),
            "b24-authorized-via": "install",
            "b24-application-token-sha256": createHash("sha256").update(applicationToken).digest("hex"),
        });
        expect(JSON.stringify(after.annotations)).not.toContain(applicationToken);
    });
});

type Hostile = {
    name: string;
    served?: () => ServedFunction;
    send: () => Promise<{ status: number; html: string }>;
    status: number;
    /** Whether Bitrix24's token endpoint may be called (only when the check needs its answer). */
    tokenCall?: boolean;
    /** Answered without a WARNING line. */
    quiet?: boolean;
};

const hostile: Hostile[] = [
    {
        name: "a redirect whose state is not the stack's",
        send: async () => get(fn, await redirectQuery("someone-elses-state")),
        status: 403,
    },
    {
        name: "a redirect without state (any portal user authorizing the app)",
        send: async () => get(fn, await redirectQuery(undefined)),
        status: 400,
    },
    {
        name: "a redirect that names another portal",
        send: async () => {
            const q = await redirectQuery(state());
            q.set("domain", "evil.bitrix24.test");
            return get(fn, q);
        },
        status: 403,
    },
    {
        name: "a redirect with another member_id (B24_MEMBER_ID configured)",
        served: () => fnWithMember,
        send: async () => {
            const q = await redirectQuery(state());
            q.set("member_id", "0123456789abcdef0123456789abcdef");
            return get(fnWithMember, q);
        },
        status: 403,
    },
    {
        name: "a redirect whose member_id differs from Bitrix24's answer (found after the exchange)",
        send: async () => {
            const q = await redirectQuery(state());
            q.set("member_id", "0123456789abcdef0123456789abcdef");
            return get(fn, q);
        },
        status: 403,
        tokenCall: true,
    },
    {
        name: "a redirect with a script for a domain (escaped, refused)",
        send: async () => {
            const q = await redirectQuery(state());
            q.set("domain", "<script>alert(1)</script>");
            return get(fn, q);
        },
        status: 400,
    },
    {
        name: "ONAPPINSTALL from another portal",
        send: () => post(fn, installBody({ "auth[domain]": "evil.bitrix24.test" }).body),
        status: 403,
    },
    {
        name: "ONAPPINSTALL with another member_id (B24_MEMBER_ID configured)",
        served: () => fnWithMember,
        send: () => post(fnWithMember, installBody({ "auth[member_id]": "0123456789abcdef0123456789abcdef" }).body),
        status: 403,
    },
    {
        name: "ONAPPINSTALL with forged tokens (the redeem fails)",
        send: () => {
            const forged = randomBytes(35).toString("hex");
            madeUp.push(forged);
            return post(fn, installBody({ "auth[refresh_token]": forged, "auth[access_token]": forged }).body);
        },
        status: 403,
        tokenCall: true,
    },
    {
        name: "ONAPPINSTALL without a refresh token",
        send: () => post(fn, installBody({ "auth[refresh_token]": undefined }).body),
        status: 400,
    },
    {
        name: "another event (ONAPPUNINSTALL)",
        send: () => post(fn, installBody({ event: "ONAPPUNINSTALL" }).body),
        status: 400,
    },
    {
        name: "a body over 64 KiB",
        send: () => post(fn, installBody({ "data[PADDING]": "x".repeat(70 * 1024) }).body),
        status: 413,
    },
    {
        name: "a JSON install event from another portal",
        send: () => {
            const form = new URLSearchParams(installBody({ "auth[domain]": "evil.bitrix24.test" }).body);
            const auth: Record<string, string> = {};
            for (const [k, v] of form) if (k.startsWith("auth[")) auth[k.slice(5, -1)] = v;
            return post(fn, JSON.stringify({ event: "ONAPPINSTALL", auth }), "application/json");
        },
        status: 403,
    },
    {
        name: "the browser's favicon request after the redirect (not logged as a refusal)",
        send: async () => {
            const response = await fetch(`${fn.url}/favicon.ico`);
            return { status: response.status, html: await response.text() };
        },
        status: 404,
        quiet: true,
    },
    {
        name: "a PUT",
        send: async () => {
            const response = await fetch(`${fn.url}/`, { method: "PUT", body: "x" });
            return { status: response.status, html: await response.text() };
        },
        status: 405,
    },
];

describe("oauthCallback refuses hostile requests: 4xx, nothing stored, a WARNING without tokens", () => {
    it.each(hostile)("$name → $status", async (c) => {
        const served = c.served?.() ?? fn;
        const before = snapshot();
        const from = served.lines.length;

        const answer = await c.send();

        expect(answer.status).toBe(c.status);
        if (!c.quiet) expect(answer.html).toMatch(/Nothing was stored|nothing was stored/);
        expect(answer.html).not.toMatch(/<script>alert/);
        const after = snapshot();
        expect({ ...after, tokenCalls: 0 }).toEqual({ ...before, tokenCalls: 0 });
        if (!c.tokenCall) expect(after.tokenCalls).toBe(before.tokenCalls);
        const lines = entries(served, from);
        expect(lines.filter((e) => e.severity === "WARNING" && e.event === "authorize.refused")).toHaveLength(c.quiet ? 0 : 1);
        expect(lines.filter((e) => e.event === "authorize.stored")).toEqual([]);
    });
});
