// `npm run authorize` end to end: a child process, the sandbox as Bitrix24, the emulator as Secret
// Manager, the test as the browser. Every run's stdout and stderr are checked for token values.
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { runAuthorize } from "../../cli/authorize";
import { createBitrix24OAuthClient } from "../../function/adapters/bitrix24-oauth-client";
import { Redactor } from "../../function/adapters/redactor";
import { createSecretManagerTokenStore } from "../../function/adapters/secret-manager-store";
import { callbackState } from "../../function/core/authorization";
import { refreshTokens } from "../../function/core/refresh-tokens";
import { withRefreshState } from "../../function/core/refresh-state";
import { deliverCloudEvent } from "../../local/cloud-event";
import { freePort, serveFunction } from "../../local/serve-function";
import { defaultSecretNames, storeTokenPair } from "../../local/token-secrets";
import { CapturedLog } from "../helpers/fakes";
import { expectNoSecrets } from "../helpers/no-secrets";
import { assertBundleBuilt, bundleDir, projectId } from "../helpers/system";
import { browserAuthorize, printedAuthorizeUrl, runCli, startCliWorld, type CliRun, type CliWorld } from "./harness";

let world: CliWorld | undefined;
const runs: CliRun[] = [];
const extraOutput: string[] = [];

async function start(options: Parameters<typeof startCliWorld>[0] = {}): Promise<CliWorld> {
    world = await startCliWorld(options);
    return world;
}

function run(args: string[], env: Record<string, string> = {}): CliRun {
    const r = runCli([...world!.args, ...args], { ...world!.env, ...env });
    runs.push(r);
    return r;
}

afterEach(async () => {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill("SIGKILL");
    const w = world;
    world = undefined;
    if (!w) return;
    const outputs = runs.flatMap((r) => [r.output().stdout, r.output().stderr]);
    runs.length = 0;
    const secrets = [w.sandbox.clientSecret, ...w.sandbox.issuedTokens()];
    await w.stop();
    // No token, code or client secret in anything the CLI (or the refresher) printed.
    expectNoSecrets([...outputs, ...extraOutput.splice(0)], secrets);
    expect(outputs.join("\n")).not.toMatch(/loopback guard/);
});

function expectNothingWritten(w: CliWorld, annotationsBefore: Record<string, string> = {}) {
    expect(w.versions("refresh")).toEqual([]);
    expect(w.versions("access")).toEqual([]);
    expect(w.annotations()).toEqual(annotationsBefore);
}

describe("npm run authorize stores a working pair", () => {
    it("loopback: catches the redirect on 127.0.0.1, stores the pair, proves it; the bundled refresher then refreshes from it", async () => {
        assertBundleBuilt();
        const port = await freePort();
        // Access tokens that live 10 minutes are inside the refresher's 20-minute margin: its first tick refreshes.
        const w = await start({ sandbox: { redirectUri: `http://localhost:${port}/oauth`, accessTtlSeconds: 600 } });
        const cli = run(["--redirect-uri", `http://localhost:${port}/oauth`]);

        const url = await printedAuthorizeUrl(cli, w.sandbox.portalDomain);
        expect(new URL(url).searchParams.get("client_id")).toBe(w.sandbox.clientId);
        expect(new URL(url).searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{20,}$/);
        const location = await browserAuthorize(w, url);
        expect(location.host).toBe(`localhost:${port}`);
        // The browser follows the redirect; the CLI answers once the pair is stored and proven.
        const page = await fetch(`http://127.0.0.1:${port}${location.pathname}${location.search}`);
        const html = await page.text();
        expect(page.status).toBe(200);
        expect(html).toMatch(/Bitrix24 authorized/);
        expect(await cli.exited).toBe(0);

        const { stdout } = cli.output();
        expect(stdout).toMatch(/Authorized\./);
        expect(stdout).toMatch(/portal +sandbox\.bitrix24\.test \(member_id [0-9a-f]+\)/);
        expect(stdout).toMatch(/scope +crm,user/);
        expect(stdout).toMatch(/versions +b24-refresh-token v1, b24-access-token v1/);
        expect(stdout).toMatch(/REST check +app\.info answered/);
        expect(w.newest("refresh")).toBe(w.sandbox.liveRefreshToken());
        expect(w.sandbox.isLiveAccessToken(w.newest("access")!)).toBe(true);
        expect(w.sandbox.restCalls).toEqual([expect.objectContaining({ method: "app.info", status: 200 })]);
        const annotations = w.annotations();
        expect(annotations).toMatchObject({ "b24-refresh-version": "1", "b24-access-version": "1", "b24-authorized-via": "cli" });
        expect(annotations["b24-lease-holder"]).toBeUndefined();
        expect(Date.parse(annotations["b24-access-expires-at"]!)).toBeGreaterThan(Date.now() + 500_000);
        expect(w.emulator.inspect(w.accessSecret)!.annotations["b24-access-version"]).toBe("1");

        // The refresher, as deployed, carries on from the stored pair.
        const fn = await serveFunction({
            dir: bundleDir,
            target: "refreshTokens",
            signatureType: "cloudevent",
            env: {
                PROJECT_ID: projectId,
                B24_CLIENT_ID: w.sandbox.clientId,
                B24_CLIENT_SECRET: w.sandbox.clientSecret,
                B24_OAUTH_TOKEN_URL: w.sandbox.tokenUrl,
                SECRET_MANAGER_EMULATOR_HOST: w.emulator.host,
                STORE_RETRY_BUDGET_SECONDS: "2",
            },
        });
        try {
            const delivery = await deliverCloudEvent(fn.url, { projectId, topic: "b24-token-refresh-trigger" });
            expect(delivery.status).toBe(204);
        } finally {
            await fn.stop();
            extraOutput.push(...fn.lines);
        }
        expect(w.sandbox.refreshCount()).toBe(1);
        expect(w.newest("refresh")).toBe(w.sandbox.liveRefreshToken());
        expect(w.annotations()).toMatchObject({ "b24-refresh-version": "2", "b24-access-version": "2" });
    });

    it("paste: takes the redirect address on stdin (the guide's https://localhost/oauth), stores the pair; the refresher core refreshes from it", async () => {
        const w = await start({ sandbox: { redirectUri: "https://localhost/oauth", accessTtlSeconds: 600 } });
        const cli = run([]);

        const location = await browserAuthorize(w, await printedAuthorizeUrl(cli, w.sandbox.portalDomain));
        expect(location.origin).toBe("https://localhost");
        cli.child.stdin.write("this is not it\n");
        await cli.waitForLine(/neither a redirect address/);
        cli.child.stdin.write(`${location.toString()}\n`);
        expect(await cli.exited).toBe(0);
        expect(cli.output().stdout).toMatch(/Authorized\./);
        expect(w.newest("refresh")).toBe(w.sandbox.liveRefreshToken());
        expect(w.sandbox.isLiveAccessToken(w.newest("access")!)).toBe(true);

        // The refresh algorithm with the real adapters picks the new pair up.
        const redactor = new Redactor();
        const log = new CapturedLog();
        const clock = { now: () => Date.now() };
        const outcome = await refreshTokens(
            {
                store: createSecretManagerTokenStore({
                    client: w.client,
                    projectId,
                    secrets: { refresh: defaultSecretNames.refresh, access: defaultSecretNames.access },
                    retryBudgetMs: 2000,
                    redactor,
                }),
                oauth: createBitrix24OAuthClient({
                    tokenUrl: w.sandbox.tokenUrl,
                    clientId: w.sandbox.clientId,
                    clientSecret: w.sandbox.clientSecret,
                    responseTimeoutMs: 2000,
                    clock,
                    redactor,
                }),
                clock,
                log,
            },
            { marginSeconds: 1200, keepVersions: 2, leaseSeconds: 60, holder: "test", criticalRepeatSeconds: 3600, hints: { reauthorize: "x" } },
        );
        extraOutput.push(...log.lines());
        expect(outcome).toMatchObject({ kind: "refreshed", refreshVersion: 2, accessVersion: 2 });
        expect(w.newest("refresh")).toBe(w.sandbox.liveRefreshToken());
    });
});

describe("npm run authorize refuses, says why, and writes nothing", () => {
    it("an expired code (the paste came after 30 s)", async () => {
        let offsetMs = 0;
        const w = await start({ sandbox: { redirectUri: "https://localhost/oauth", now: () => Date.now() + offsetMs } });
        const cli = run([]);
        const location = await browserAuthorize(w, await printedAuthorizeUrl(cli, w.sandbox.portalDomain));
        offsetMs = 31_000;
        cli.child.stdin.write(`${location.toString()}\n`);

        expect(await cli.exited).toBe(1);
        expect(cli.output().stderr).toMatch(/authorization code has expired \(expired_token\): a code is valid for only 30 seconds\. Nothing was stored\./);
        expect(w.sandbox.tokenCalls.map((c) => c.outcome)).toEqual(["expired_token"]);
        expectNothingWritten(w);
    });

    it("a redirect from another portal (the code is not even spent)", async () => {
        const port = await freePort();
        const w = await start({ sandbox: { redirectUri: `http://localhost:${port}/cb`, portalDomain: "other.bitrix24.test" } });
        const cli = runCli(["--project", projectId, "--portal", "mine.bitrix24.test", "--redirect-uri", `http://localhost:${port}/cb`], w.env);
        runs.push(cli);

        const location = await browserAuthorize(w, await printedAuthorizeUrl(cli, "mine.bitrix24.test"));
        const page = await fetch(`http://127.0.0.1:${port}${location.pathname}${location.search}`);
        expect(page.status).toBe(400);
        expect(await page.text()).toMatch(/other\.bitrix24\.test/);

        expect(await cli.exited).toBe(1);
        expect(cli.output().stderr).toMatch(
            /redirect came from portal other\.bitrix24\.test, but --portal is mine\.bitrix24\.test\. Nothing was stored and the code was not used\./,
        );
        expect(w.sandbox.tokenCalls).toEqual([]);
        expectNothingWritten(w);
    });

    it("invalid_client: the stored client secret is wrong", async () => {
        const w = await start({ sandbox: { redirectUri: "https://localhost/oauth" }, clientSecret: "NotTheRightSecretAtAll0123456789" });
        const cli = run([]);
        const location = await browserAuthorize(w, await printedAuthorizeUrl(cli, w.sandbox.portalDomain));
        cli.child.stdin.write(`${location.toString()}\n`);

        expect(await cli.exited).toBe(1);
        const { stdout, stderr } = cli.output();
        expect(stderr).toMatch(/rejected the application's client id or secret \(invalid_client\)\. Nothing was stored\..*the secret b24-client-secret/);
        expectNothingWritten(w);
        expectNoSecrets([stdout, stderr], ["NotTheRightSecretAtAll0123456789"]);
    });

    it("live tokens without --force; with --force it authorizes again", async () => {
        const w = await start({ sandbox: { redirectUri: "https://localhost/oauth" } });
        const existing = await storeTokenPair(w.client, projectId, w.sandbox.authorize());
        const [secret] = await w.client.getSecret({ name: w.refreshSecret });
        const annotations = withRefreshState(secret.annotations ?? {}, {
            pair: { refreshVersion: existing.refreshVersion, accessVersion: existing.accessVersion, accessExpiresAt: Date.now() + 50 * 60_000 },
        });
        await w.client.updateSecret({ secret: { name: w.refreshSecret, annotations }, updateMask: { paths: ["annotations"] } });

        const refused = run([]);
        expect(await refused.exited).toBe(1);
        expect(refused.output().stderr).toMatch(/tokens for this stack are already live: b24-access-token version 1 expires .* \(in 50 min\).*Nothing was written.*--force/);
        expect(refused.output().stdout).not.toMatch(/oauth\/authorize/);
        expect(w.versions("refresh")).toHaveLength(1);
        expect(w.annotations()).toEqual(annotations);

        const forced = run(["--force"]);
        const location = await browserAuthorize(w, await printedAuthorizeUrl(forced, w.sandbox.portalDomain));
        forced.child.stdin.write(`${location.toString()}\n`);
        expect(await forced.exited).toBe(0);
        expect(w.newest("refresh")).toBe(w.sandbox.liveRefreshToken());
        expect(w.annotations()).toMatchObject({ "b24-refresh-version": "2", "b24-access-version": "2" });
    });

    it("Secret Manager unreachable: stops before the browser step", async () => {
        const w = await start();
        const closed = await freePort();
        const cli = run([], { SECRET_MANAGER_EMULATOR_HOST: `127.0.0.1:${closed}`, STORE_RETRY_BUDGET_SECONDS: "1" });

        expect(await cli.exited).toBe(1);
        const { stdout, stderr } = cli.output();
        expect(stderr).toMatch(new RegExp(`Cannot reach the Secret Manager emulator at 127\\.0\\.0\\.1:${closed} .*Nothing was written\\.`));
        expect(stdout).not.toMatch(/oauth\/authorize/);
        expect(w.sandbox.tokenCalls).toEqual([]);
        expectNothingWritten(w);
    });
});

describe("npm run authorize, in process (the same entry, no child)", () => {
    /** Runs the CLI's entry in this process; `paste` is called with the printed authorize address and returns the line to paste. */
    async function inProcess(args: string[], paste?: (url: string) => Promise<string>) {
        const stdin = new PassThrough();
        let stdout = "";
        let stderr = "";
        const pending = runAuthorize({
            argv: [...world!.args, ...args],
            env: world!.env,
            stdin,
            stdout: (t) => {
                stdout += t;
                const url = /https:\/\/\S+\/oauth\/authorize\/\?\S+/.exec(t)?.[0];
                if (url && paste) void paste(url).then((line) => stdin.write(`${line}\n`));
            },
            stderr: (t) => (stderr += t),
        });
        const code = await pending;
        extraOutput.push(stdout, stderr);
        return { code, stdout, stderr };
    }

    it("--print-callback-url prints the authorize address the oauthCallback function accepts, and writes nothing", async () => {
        const w = await start();
        const { code, stdout } = await inProcess(["--print-callback-url"]);
        expect(code).toBe(0);
        const url = new URL(stdout.trim());
        expect(url.origin + url.pathname).toBe(`https://${w.sandbox.portalDomain}/oauth/authorize/`);
        expect(url.searchParams.get("state")).toBe(
            callbackState({ clientId: w.sandbox.clientId, clientSecret: w.sandbox.clientSecret, portalDomain: w.sandbox.portalDomain }),
        );
        expectNothingWritten(w);
    });

    it("a bare pasted code is accepted with --member-id (the answer must name it)", async () => {
        const w = await start({ sandbox: { redirectUri: "https://localhost/oauth" } });
        const { code, stdout } = await inProcess(["--member-id", w.sandbox.memberId], async (url) => {
            const location = await browserAuthorize(w, url);
            return location.searchParams.get("code")!;
        });
        expect(code).toBe(0);
        expect(stdout).toMatch(/Authorized\./);
        expect(w.newest("refresh")).toBe(w.sandbox.liveRefreshToken());
    });

    it("a bare pasted code without --member-id must come back with the portal's REST address (here it does not: refused, nothing stored)", async () => {
        const w = await start({ sandbox: { redirectUri: "https://localhost/oauth" } });
        const { code, stderr } = await inProcess([], async (url) => (await browserAuthorize(w, url)).searchParams.get("code")!);
        expect(code).toBe(1);
        expect(stderr).toMatch(/names the REST address of 127\.0\.0\.1:\d+, not sandbox\.bitrix24\.test.*Nothing was stored\..*--member-id/);
        expectNothingWritten(w);
    });
});
