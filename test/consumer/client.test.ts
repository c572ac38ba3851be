// The consumer client against the Secret Manager emulator and the Bitrix24 sandbox: how it reads
// the token, caches it, recovers from a revoked one, and what its errors look like.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { grpc } from "google-gax";
import {
    AccessTokenError,
    Bitrix24AuthError,
    createB24Client,
    type B24Client,
    type B24ClientOptions,
} from "../../consumer";
import { errorTexts, expectNoSecrets } from "../helpers/no-secrets";
import { accessSecret, captureLog, projectId, refreshSecret, startConsumerWorld, type ConsumerWorld } from "./harness";

let world: ConsumerWorld;
const clients: B24Client[] = [];
let captured: ReturnType<typeof captureLog>;

beforeEach(async () => {
    world = await startConsumerWorld();
    captured = captureLog();
});

afterEach(async () => {
    // Nothing a client logged or threw in this test may hold a token or the client secret.
    expectNoSecrets(captured.lines, world.secretValues());
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await world.stop();
});

function client(options: Partial<B24ClientOptions> = {}): B24Client {
    const c = createB24Client({
        projectId,
        clientEndpoint: world.clientEndpoint,
        emulatorHost: world.emulator.host,
        requestsPerSecond: 50,
        secretManagerRetryBudgetMs: 1000,
        log: captured.log,
        env: {},
        ...options,
    });
    clients.push(c);
    return c;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
    try {
        await promise;
    } catch (error) {
        captured.lines.push(...errorTexts(error));
        return error as Error;
    }
    throw new Error("expected a failure");
}

const namesRefreshSecret = () => world.emulator.calls.filter((c) => c.name.includes("b24-refresh-token"));

describe("reading the token", () => {
    it("reads the annotated version by number, calls the portal with it, and never names the refresh-token secret", async () => {
        const { accessVersion, accessToken } = await world.authorize();
        const b24 = client();
        const answer = await b24.call<{ ID: string }>("user.current");
        expect(answer.result.ID).toBe("1");
        expect(await b24.getAccessToken()).toBe(accessToken);
        expect(world.accessCalls()).toEqual([
            { method: "GetSecret", name: accessSecret },
            { method: "AccessSecretVersion", name: `${accessSecret}/versions/${accessVersion}` },
        ]);
        expect(world.emulator.calls.some((c) => c.name.endsWith("/versions/latest"))).toBe(false);
        expect(namesRefreshSecret()).toEqual([]);
        expect(world.sandbox.restCalls.map((c) => [c.method, c.status])).toEqual([["user.current", 200]]);
    });

    it("without annotations, finds the newest enabled version by listing, not `latest` (which may lag)", async () => {
        await world.authorize(false);
        const second = await world.rotate(false);
        // `latest` still resolves to version 1 here, as it can for minutes after a real refresh.
        world.emulator.staleLatest(accessSecret, 1);
        const b24 = client();
        expect(await b24.getAccessToken()).toBe(second.accessToken);
        expect(world.accessCalls("ListSecretVersions")).toHaveLength(1);
        expect(world.accessCalls("AccessSecretVersion")).toEqual([{ method: "AccessSecretVersion", name: `${accessSecret}/versions/2` }]);
        const read = captured.events.find((e) => e.event === "token.read");
        expect(read).toMatchObject({ version: 2, expirySource: "create_time", how: "list" });
        expect(namesRefreshSecret()).toEqual([]);
    });

    it("caches the token until shortly before its recorded expiry, then reads it again", async () => {
        const start = Date.now();
        let clock = start;
        await world.authorize(); // the sandbox's token expires in an hour
        const b24 = client({ now: () => clock, expirySkewMs: 60_000 });
        await b24.getAccessToken();
        clock = start + 30 * 60_000;
        await b24.getAccessToken();
        await b24.call("user.current");
        expect(world.accessCalls("AccessSecretVersion")).toHaveLength(1);
        clock = start + 59.5 * 60_000; // within a minute of expiry
        await b24.getAccessToken();
        expect(world.accessCalls("AccessSecretVersion")).toHaveLength(2);
    });

    it("collapses concurrent first reads into one", async () => {
        await world.authorize();
        const b24 = client();
        await Promise.all(Array.from({ length: 10 }, () => b24.getAccessToken()));
        expect(world.accessCalls("AccessSecretVersion")).toHaveLength(1);
    });

    it("says the app is not authorized when the secret has no version", async () => {
        const error = await failure(client().call("user.current"));
        expect(error).toBeInstanceOf(AccessTokenError);
        expect(error).toMatchObject({ code: "not_authorized", secret: "b24-access-token" });
        expect(error.message).toMatch(/npm run authorize -- --project/);
        expect(world.sandbox.restCalls).toEqual([]);
    });

    it("names the missing secret and the fix", async () => {
        const error = await failure(client({ accessTokenSecret: "other-access-token" }).getAccessToken());
        expect(error).toMatchObject({ code: "secret_not_found", secret: "other-access-token" });
        expect(error.message).toMatch(/other-access-token in project consumer-project does not exist/);
    });

    it("names the grant when Secret Manager refuses access", async () => {
        await world.authorize();
        world.emulator.injectFault({ method: "GetSecret", code: grpc.status.PERMISSION_DENIED });
        const error = await failure(client().getAccessToken());
        expect(error).toMatchObject({ code: "permission_denied" });
        expect(error.message).toMatch(/roles\/secretmanager\.secretAccessor and roles\/secretmanager\.viewer/);
    });

    it("keeps serving a still-valid cached token while Secret Manager is unavailable, and fails once it has none", async () => {
        const start = Date.now();
        let clock = start;
        const { accessToken } = await world.authorize();
        const b24 = client({ now: () => clock, expirySkewMs: 10 * 60_000, secretManagerRetryBudgetMs: 200 });
        await b24.getAccessToken();
        world.emulator.injectFault({ method: "*", code: grpc.status.UNAVAILABLE, times: Infinity });
        clock = start + 55 * 60_000; // past the cache's end, before the token's expiry
        expect(await b24.getAccessToken()).toBe(accessToken);
        expect(captured.events.at(-1)).toMatchObject({ event: "token.read_failed", code: "unavailable", servedCachedVersion: 1 });
        const error = await failure(client({ secretManagerRetryBudgetMs: 200 }).getAccessToken());
        expect(error).toMatchObject({ code: "unavailable" });
    });
});

describe("a token revoked by a refresh", () => {
    it("re-reads once by listing when the annotation still points at the revoked version, and retries", async () => {
        await world.authorize();
        const b24 = client();
        await b24.call("user.current");
        // A refresh happened: the new version is stored, the annotation not yet updated.
        const second = await world.rotate(false);
        world.emulator.clearCalls();
        await b24.call("user.current");
        expect(world.accessCalls("AccessSecretVersion")).toEqual([{ method: "AccessSecretVersion", name: `${accessSecret}/versions/${second.accessVersion}` }]);
        expect(world.sandbox.restCalls.map((c) => c.status)).toEqual([200, 401, 200]);
        expect(captured.events.filter((e) => e.event === "rest.token_rejected")).toEqual([
            { event: "rest.token_rejected", method: "user.current", code: "expired_token", version: 1 },
        ]);
        expect(namesRefreshSecret()).toEqual([]);
    });

    it("many calls rejected at once share one re-read", async () => {
        await world.authorize();
        const b24 = client();
        await b24.getAccessToken();
        await world.rotate();
        world.emulator.clearCalls();
        await Promise.all(Array.from({ length: 8 }, () => b24.call("user.current")));
        expect(world.accessCalls("AccessSecretVersion")).toHaveLength(1);
    });

    it("concurrent calls rejected when nothing newer is stored share one re-read (and its second look)", async () => {
        await world.authorize();
        const b24 = client({ reReadDelayMs: 20 });
        await b24.getAccessToken();
        await world.revoke();
        world.emulator.clearCalls();
        const errors = await Promise.all(Array.from({ length: 5 }, () => failure(b24.call("user.current"))));
        expect(errors.every((e) => e instanceof Bitrix24AuthError)).toBe(true);
        expect(world.accessCalls("ListSecretVersions")).toHaveLength(2);
    });

    it("when nothing newer is stored, looks once more after a pause and then throws a typed error without the token", async () => {
        await world.authorize();
        const b24 = client({ reReadDelayMs: 20 });
        await b24.getAccessToken();
        await world.revoke(); // refreshed elsewhere, never stored: the stored token is dead
        world.emulator.clearCalls();
        const error = await failure(b24.call("crm.deal.list", { select: ["ID"] }));
        expect(error).toBeInstanceOf(Bitrix24AuthError);
        expect(error).toMatchObject({ method: "crm.deal.list", code: "expired_token", status: 401, tokenVersion: 1 });
        expect(error.message).toMatch(/npm run status/);
        expect(world.accessCalls("ListSecretVersions")).toHaveLength(2);
        // The same dead token is not re-read on every call: later calls, even concurrent ones, fail without more reads.
        await Promise.all(Array.from({ length: 3 }, () => failure(b24.call("crm.deal.list"))));
        expect(world.accessCalls("ListSecretVersions")).toHaveLength(2);
    });
});

describe("configuration", () => {
    it("rejects a plain-http or malformed endpoint before anything is read", () => {
        expect(() => client({ clientEndpoint: "http://example.bitrix24.com/rest/" })).toThrow(/must be https/);
        expect(() => client({ clientEndpoint: "not a url" })).toThrow(/not a URL/);
        expect(() => createB24Client({ clientEndpoint: world.clientEndpoint, env: {} })).toThrow(/projectId/);
        expect(() => createB24Client({ projectId, env: {} })).toThrow(/clientEndpoint/);
    });

    it("reads its defaults from the environment (project, portal domain, emulator)", async () => {
        const { accessToken } = await world.authorize();
        const b24 = createB24Client({
            env: { PROJECT_ID: projectId, B24_PORTAL_DOMAIN: "example.bitrix24.com", SECRET_MANAGER_EMULATOR_HOST: world.emulator.host },
        });
        clients.push(b24);
        expect(await b24.getAccessToken()).toBe(accessToken);
    });

    it("refuses a method name that is not one", async () => {
        await expect(client().call("../oauth/token")).rejects.toThrow(/not a Bitrix24 REST method name/);
    });
});

// Referenced so a rename of the harness constant fails this file loudly.
void refreshSecret;
