// REST calls through the consumer client: pacing under the portal's limit (measured where the
// portal sees it, the sandbox's restCalls), back-off on the two limits, and every failure shape
// becoming a typed error that holds neither the token nor the request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Bitrix24Error, Bitrix24RateLimitError, Bitrix24TransportError, createB24Client, type B24Client, type B24ClientOptions } from "../../consumer";
import { errorTexts, expectNoSecrets } from "../helpers/no-secrets";
import { captureLog, maxInWindow, projectId, startConsumerWorld, type ConsumerWorld } from "./harness";

const worlds: ConsumerWorld[] = [];
const clients: B24Client[] = [];
const servers: Server[] = [];
/** Everything every client in the test logged. */
let captured = captureLog();

beforeEach(() => {
    captured = captureLog();
});

afterEach(async () => {
    expectNoSecrets(captured.lines, worlds.flatMap((w) => w.secretValues()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
    await Promise.all(worlds.splice(0).map((w) => w.stop()));
});

async function world(options: Parameters<typeof startConsumerWorld>[0] = {}): Promise<ConsumerWorld> {
    const w = await startConsumerWorld(options);
    worlds.push(w);
    await w.authorize();
    return w;
}

function client(w: ConsumerWorld, options: Partial<B24ClientOptions>): B24Client {
    const c = createB24Client({ projectId, clientEndpoint: w.clientEndpoint, emulatorHost: w.emulator.host, env: {}, log: captured.log, ...options });
    clients.push(c);
    return c;
}

describe("pacing", () => {
    it("a burst of 50 calls stays under the configured rate as the portal measures it, and all succeed", async () => {
        const w = await world({ restRateLimitPerSecond: 20 });
        const b24 = client(w, { requestsPerSecond: 20 });
        const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => b24.call<{ params: { n: number } }>("test.echo", { n: i })));
        expect(answers.map((a) => a.result.params.n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
        expect(w.sandbox.restCalls).toHaveLength(50);
        expect(w.sandbox.restCalls.every((c) => c.status === 200)).toBe(true);
        expect(maxInWindow(w.sandbox.restCalls.map((c) => c.at))).toBeLessThanOrEqual(20);
    });

    it("at the real default of 2 per second, no second holds more than 2 requests", async () => {
        const w = await world({ restRateLimitPerSecond: 2 });
        const b24 = client(w, {});
        const started = Date.now();
        await Promise.all(Array.from({ length: 5 }, () => b24.call("user.current")));
        expect(Date.now() - started).toBeGreaterThanOrEqual(2000); // 4 gaps of at least 500 ms
        expect(w.sandbox.restCalls.map((c) => c.status)).toEqual([200, 200, 200, 200, 200]);
        expect(maxInWindow(w.sandbox.restCalls.map((c) => c.at))).toBeLessThanOrEqual(2);
    });

    it("retries QUERY_LIMIT_EXCEEDED with back-off until every call succeeds", async () => {
        // The portal's bucket is shared: here it drains slower than this client paces itself.
        const w = await world({ restRateLimitPerSecond: 10, restRateLimitBurst: 2 });
        const b24 = client(w, { requestsPerSecond: 40, backoffInitialMs: 50, backoffMaxMs: 400, rateLimitRetries: 10 });
        const answers = await Promise.all(Array.from({ length: 12 }, () => b24.call("user.current")));
        expect(answers).toHaveLength(12);
        const limited = w.sandbox.restCalls.filter((c) => c.status === 503);
        expect(limited.length).toBeGreaterThan(0);
        expect(limited.every((c) => c.error === "QUERY_LIMIT_EXCEEDED")).toBe(true);
        expect(w.sandbox.restCalls.filter((c) => c.status === 200)).toHaveLength(12);
        expect(captured.events.filter((e) => e.event === "rest.rate_limited").length).toBe(limited.length);
    });

    it("gives up after the allowed retries with a typed rate-limit error", async () => {
        const w = await world({ restRateLimitPerSecond: 0.001, restRateLimitBurst: 1 });
        const b24 = client(w, { requestsPerSecond: 50, backoffInitialMs: 10, backoffMaxMs: 20, rateLimitRetries: 2 });
        await b24.call("user.current"); // uses up the bucket
        const error = await b24.call("crm.deal.get", { id: 1 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Bitrix24RateLimitError);
        expect(error).toMatchObject({ method: "crm.deal.get", code: "QUERY_LIMIT_EXCEEDED", status: 503, attempts: 3 });
        expectNoSecrets(errorTexts(error), w.secretValues());
    });
});

/** A portal stand-in that answers from a script, for shapes the sandbox does not produce. */
type Answer = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function scriptedPortal(answers: Answer[]) {
    const seen: Array<{ url: string; body: string }> = [];
    const server = createServer((req, res) => {
        let body = "";
        req.on("data", (chunk) => (body += chunk));
        req.on("end", () => {
            seen.push({ url: req.url ?? "", body });
            const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!;
            answer(req, res, body);
        });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rest/`, seen };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
};

describe("answers and failures", () => {
    async function setup(answers: Parameters<typeof scriptedPortal>[0], options: Partial<B24ClientOptions> = {}) {
        const w = await world();
        const portal = await scriptedPortal(answers);
        const b24 = client(w, { clientEndpoint: portal.endpoint, requestsPerSecond: 100, backoffInitialMs: 10, backoffMaxMs: 50, ...options });
        const fail = async (promise: Promise<unknown>) => {
            const error = await promise.then(
                () => undefined,
                (e: unknown) => e,
            );
            expect(error, "expected the call to fail").toBeInstanceOf(Error);
            expectNoSecrets(errorTexts(error), w.secretValues());
            return error as Bitrix24Error;
        };
        return { w, portal, b24, fail };
    }

    it("sends the token in the POST body only, never in the URL", async () => {
        const { w, portal, b24 } = await setup([json(200, { result: { ok: true } })]);
        await b24.call("crm.deal.get", { id: 42 });
        expect(portal.seen[0]!.url).toBe("/rest/crm.deal.get.json");
        expect(JSON.parse(portal.seen[0]!.body)).toEqual({ id: 42, auth: await b24.getAccessToken() });
        expectNoSecrets([portal.seen[0]!.url], w.secretValues());
    });

    it("a Bitrix24 error becomes a Bitrix24Error with the method and the code, not retried", async () => {
        const { portal, b24, fail } = await setup([json(400, { error: "NOT_FOUND", error_description: "Not found" })]);
        const error = await fail(b24.call("crm.deal.get", { id: 42 }));
        expect(error).toBeInstanceOf(Bitrix24Error);
        expect(error).toMatchObject({ name: "Bitrix24Error", method: "crm.deal.get", code: "NOT_FOUND", status: 400, description: "Not found" });
        expect(error.message).toBe("Bitrix24 crm.deal.get failed: NOT_FOUND (HTTP 400): Not found");
        expect(portal.seen).toHaveLength(1);
    });

    it("an error that echoes the token is scrubbed", async () => {
        const { portal, b24, fail } = await setup([
            (req, res, body) => json(200, { error: "INVALID_REQUEST", error_description: `bad auth ${(JSON.parse(body) as { auth: string }).auth}` })(req, res),
        ]);
        const error = await fail(b24.call("crm.deal.get"));
        expect(error.description).toBe("bad auth [redacted]");
        expect(portal.seen).toHaveLength(1);
    });

    it("retries 429 OPERATION_TIME_LIMIT, honouring Retry-After within the back-off cap", async () => {
        const { portal, b24 } = await setup([
            json(429, { error: "OPERATION_TIME_LIMIT", error_description: "Method is blocked due to operation time limit." }, { "retry-after": "0" }),
            json(200, { result: [1, 2, 3], total: 3 }),
        ]);
        const answer = await b24.call("crm.deal.list");
        expect(answer).toMatchObject({ result: [1, 2, 3], total: 3 });
        expect(portal.seen).toHaveLength(2);
    });

    it("an HTML gateway page is a transport error that says the request may have been executed", async () => {
        const { portal, b24, fail } = await setup([
            (_req, res) => res.writeHead(502, { "content-type": "text/html" }).end("<html><body>502 Bad Gateway</body></html>"),
        ]);
        const error = await fail(b24.call("crm.deal.add", { fields: { TITLE: "x" } }));
        expect(error).toBeInstanceOf(Bitrix24TransportError);
        expect(error).toMatchObject({ code: "http_502", status: 502, sent: true });
        expect(portal.seen).toHaveLength(1);
    });

    it("a redirect is not followed (it would carry the token elsewhere)", async () => {
        const { portal, b24, fail } = await setup([(_req, res) => res.writeHead(302, { location: "http://127.0.0.1:9/elsewhere" }).end()]);
        const error = await fail(b24.call("user.current"));
        expect(error).toMatchObject({ code: "http_302", status: 302 });
        expect(portal.seen).toHaveLength(1);
    });

    it("a portal that is not listening is a transport error that never reached it", async () => {
        const { b24, fail } = await setup([], { clientEndpoint: "http://127.0.0.1:9/rest/", connectRetries: 0 });
        const error = await fail(b24.call("user.current"));
        expect(error).toBeInstanceOf(Bitrix24TransportError);
        expect(error).toMatchObject({ code: "ECONNREFUSED", sent: false });
        expect(error.message).toMatch(/never reached the portal/);
    });

    it("a portal that does not answer in time is a timeout that may have been executed", async () => {
        const { b24, fail } = await setup([() => undefined], { timeoutMs: 200 });
        const error = await fail(b24.call("crm.deal.add"));
        expect(error).toMatchObject({ code: "timeout_response", sent: true });
    });
});
