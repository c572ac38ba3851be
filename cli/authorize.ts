// `npm run authorize`: the first authorization of the Bitrix24 application, with no curl and no
// copying of tokens. See `npm run authorize -- --help` (text in options.ts) and README "First authorization".
import { randomBytes, randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { createBitrix24OAuthClient } from "../function/adapters/bitrix24-oauth-client";
import type { PageContent } from "../function/adapters/html-page";
import { Redactor } from "../function/adapters/redactor";
import { createSecretManagerClient, createSecretManagerTokenStore } from "../function/adapters/secret-manager-store";
import { callbackState, checkIssuedTokens, checkRedirect, liveTokens } from "../function/core/authorization";
import type { Clock } from "../function/core/ports";
import { StoreError } from "../function/core/ports";
import { parseRefreshState } from "../function/core/refresh-state";
import { storeAuthorizedTokens } from "../function/core/store-authorization";
import { oauthProblem, portalProblem, storeProblem } from "./messages";
import { authorizeUrl, parseOptions, usage, type AuthorizeOptions } from "./options";
import { ListenError, readPastedRedirect, startLoopbackListener, type LoopbackListener, type Received } from "./receive-code";
import { checkAppInfo } from "./rest-check";

export interface AuthorizeIo {
    argv: string[];
    env: Record<string, string | undefined>;
    stdin: Readable;
    stdout: (text: string) => void;
    stderr: (text: string) => void;
    clock?: Clock;
}

/** Failure that ends the run: printed as is (it is already scrubbed of values) with exit status 1. */
class Stop extends Error {}

/** Our lease while writing, and how long to wait for a refresher run that holds it. */
const leaseSeconds = 60;
const leaseWaitMs = 30_000;

export async function runAuthorize(io: AuthorizeIo): Promise<number> {
    const parsed = parseOptions(io.argv, io.env);
    if (parsed.kind === "help") {
        io.stdout(`${usage}\n`);
        return 0;
    }
    if (parsed.kind === "usage_error") {
        io.stderr(`authorize: ${parsed.problems.join("\nauthorize: ")}\n\nRun \`npm run authorize -- --help\` for every option.\n`);
        return 2;
    }
    const options = parsed.options;
    const redactor = new Redactor();
    redactor.add(options.clientSecret);
    const say = (text = "") => io.stdout(redactor.scrub(text) + "\n");
    const clock = io.clock ?? { now: () => Date.now() };
    const client = createSecretManagerClient({ projectId: options.projectId, emulatorHost: options.emulatorHost });
    let listener: LoopbackListener | undefined;
    try {
        return await authorize(options, io, client, redactor, say, clock, (l) => (listener = l));
    } catch (error) {
        const message = error instanceof Stop ? error.message : `unexpected ${error instanceof Error ? error.name : "error"}; nothing more was done`;
        io.stderr(redactor.scrub(`authorize: ${message}`) + "\n");
        listener?.finish(error instanceof Stop ? 400 : 500, { title: "Authorization failed", paragraphs: [redactor.scrub(message)] });
        return 1;
    } finally {
        await listener?.close();
        await client.close().catch(() => {});
    }
}

async function authorize(
    options: AuthorizeOptions,
    io: AuthorizeIo,
    client: SecretManagerServiceClient,
    redactor: Redactor,
    say: (text?: string) => void,
    clock: Clock,
    keepListener: (listener: LoopbackListener) => void,
): Promise<number> {
    const tokenStore = createSecretManagerTokenStore({
        client,
        projectId: options.projectId,
        secrets: { refresh: options.secrets.refresh, access: options.secrets.access },
        retryBudgetMs: options.storeRetryBudgetMs,
        redactor,
    });
    const store = async <T>(what: string, run: () => Promise<T>, stored = "Nothing was written."): Promise<T> => {
        try {
            return await run();
        } catch (error) {
            if (error instanceof StoreError) throw new Stop(storeProblem(error, options, what, stored));
            throw error;
        }
    };

    // 1. Before a human does anything: Secret Manager answers, the secrets exist, no live pair is overwritten.
    if (!options.printCallbackUrl) {
        const meta = await store(`reading ${options.secrets.refresh}`, () => tokenStore.readMeta());
        await store(`listing ${options.secrets.access}`, () => tokenStore.listEnabledVersions("access"));
        const live = liveTokens(parseRefreshState(meta.annotations), clock.now());
        if (live.live && !options.force) {
            throw new Stop(
                `tokens for this stack are already live: ${options.secrets.access}${live.accessVersion ? ` version ${live.accessVersion}` : ""} ` +
                    `expires ${new Date(clock.now() + live.secondsLeft * 1000).toISOString()} (in ${Math.round(live.secondsLeft / 60)} min) ` +
                    "and the refresher has recorded no failure. Nothing was written. Authorizing again starts a second token chain; " +
                    "if that is what you want (e.g. to authorize as another user), run again with --force.",
            );
        }
        if (live.live) say(`--force: the stored pair is live (${Math.round(live.secondsLeft / 60)} min left); a new chain replaces it.`);
        else if (live.reason === "failure_recorded") say(`The refresher recorded a failure (${live.failure}); this authorization clears it.`);
    }

    // 2. The application's credentials, from the flags/environment or the stack's secrets.
    const { clientId, clientSecret } = await credentials(options, client, redactor, store);

    if (options.printCallbackUrl) {
        const state = callbackState({ clientId, clientSecret, portalDomain: options.portalDomain });
        say(authorizeUrl({ portalDomain: options.portalDomain, clientId, state, redirectUri: options.redirectUri }));
        return 0;
    }

    // 3. The authorize address, and the code coming back.
    const state = randomBytes(18).toString("base64url");
    let listener: LoopbackListener | undefined;
    if (options.loopback) {
        try {
            listener = await startLoopbackListener(options.loopback.port, options.loopback.path, options.timeoutMs);
        } catch (error) {
            if (error instanceof ListenError) throw new Stop(`${error.message}. Nothing was written.`);
            throw error;
        }
        keepListener(listener);
    }
    const url = authorizeUrl({ portalDomain: options.portalDomain, clientId, state, redirectUri: options.redirectUri });
    say(`Authorizing the Bitrix24 app on ${options.portalDomain}; tokens go to ${options.secrets.refresh} and ${options.secrets.access} in ${options.projectId}.`);
    say();
    say("1. Open this address in a browser signed in to the portal (as the user the app should act as) and allow access:");
    say();
    say(`   ${url}`);
    say();
    const minutes = Math.round(options.timeoutMs / 60_000);
    let received: Received;
    if (listener) {
        say(`2. Waiting for Bitrix24 to send the browser to ${options.redirectUri} (listening on 127.0.0.1:${options.loopback!.port}; gives up after ${minutes} min) …`);
        received = await listener.received;
    } else {
        say("2. Bitrix24 then sends the browser to the app's redirect address (for example https://localhost/oauth, with a code parameter), which may not load.");
        say("   Copy the whole address from the address bar and paste it here, then press Enter. Be quick: the code is valid for 30 seconds.");
        received = await readPastedRedirect(io.stdin, (hint) => say(`   ${hint}`), options.timeoutMs);
    }
    if (!received.ok) {
        if (received.reason === "denied") throw new Stop(`Bitrix24 did not grant access (${received.error}). Nothing was written.`);
        if (received.reason === "timeout") throw new Stop(`no redirect arrived within ${minutes} min. Nothing was written. Run again when you are ready.`);
        throw new Stop("the input ended before a redirect address or code was pasted. Nothing was written.");
    }
    const params = received.params;
    redactor.add(params.code);
    redactor.add(params.state);

    // 4. Checks that need no exchange: state and portal. The code is not spent if they fail.
    const before = checkRedirect(params, {
        portalDomain: options.portalDomain,
        memberId: options.memberId,
        expectedState: state,
        stateRequired: listener !== undefined,
    });
    if (!before.ok) throw new Stop(portalProblem(before, options, false));

    // 5. The exchange, at once.
    say("Exchanging the code …");
    const oauth = createBitrix24OAuthClient({
        tokenUrl: options.tokenUrl,
        clientId,
        clientSecret,
        responseTimeoutMs: 30_000,
        clock,
        redactor,
    });
    const answer = await oauth.exchangeCode(params.code);
    if (!answer.ok) throw new Stop(oauthProblem(answer.failure, options));
    const tokens = answer.tokens;
    const after = checkIssuedTokens(tokens, {
        portalDomain: options.portalDomain,
        memberId: options.memberId,
        redirectDomain: params.domain,
        redirectMemberId: params.memberId,
    });
    if (!after.ok) throw new Stop(portalProblem(after, options, true));

    // 6. Store as the refresher does: under its lease, refresh token first, then the access token, then the record.
    const stored = await store(
        `storing the new refresh token in ${options.secrets.refresh}`,
        () =>
            storeAuthorizedTokens(
                { store: tokenStore, clock },
                { tokens, via: "cli", holder: `authorize-cli/${randomUUID()}`, leaseSeconds, leaseWaitMs },
            ),
        "Bitrix24 issued tokens, but nothing usable was stored (they are dropped; they were never printed). Run `npm run authorize` again.",
    );
    say(
        `Stored ${options.secrets.refresh} version ${stored.refreshVersion}` +
            (stored.accessVersion !== undefined ? ` and ${options.secrets.access} version ${stored.accessVersion}.` : "."),
    );
    for (const warning of stored.warnings) say(`Note: ${warning}.`);

    // 7. The proof: one REST call with the new access token.
    const restBase = tokens.clientEndpoint ?? `https://${options.portalDomain}/rest/`;
    const rest = await checkAppInfo(restBase, tokens.accessToken);
    const expiresAt = new Date(stored.expiresAtMs);
    const minutesLeft = Math.round((stored.expiresAtMs - clock.now()) / 60_000);
    const summary: string[] = [
        `  portal         ${options.portalDomain}${tokens.memberId ? ` (member_id ${tokens.memberId})` : ""}`,
        `  scope          ${params.scope ?? tokens.scope ?? "(not stated)"}`,
        `  access token   expires ${expiresAt.toISOString()} (in ${minutesLeft} min); the refresher renews it from here`,
        `  versions       ${options.secrets.refresh} v${stored.refreshVersion}, ${options.secrets.access} ${
            stored.accessVersion !== undefined ? `v${stored.accessVersion}` : "not stored (the refresher issues one at its next tick)"
        }`,
    ];
    if (!rest.ok) {
        summary.push(`  REST check     app.info through ${rest.endpoint} failed: ${rest.reason}`);
        say();
        say("Stored, but not proven:");
        summary.forEach((line) => say(line));
        const problem =
            `the tokens were stored, but the REST check (app.info through ${rest.endpoint}) failed: ${rest.reason}. ` +
            "The refresher will keep the pair alive; check the app's status in the portal (Applications > Developer resources > Integrations).";
        listener?.finish(502, page("Stored, but not proven", [problem]));
        io.stderr(redactor.scrub(`authorize: ${problem}`) + "\n");
        return 1;
    }
    summary.push(`  REST check     app.info answered through ${rest.endpoint}${rest.appCode ? ` (app ${rest.appCode}${rest.installed === false ? ", not installed yet" : ""})` : ""}`);
    say();
    say("Authorized.");
    summary.forEach((line) => say(line));
    listener?.finish(
        200,
        page("Bitrix24 authorized", [
            `Tokens for ${options.portalDomain} are stored in Secret Manager and proven with app.info. You can close this tab; the terminal has the details.`,
        ]),
    );
    return 0;
}

function page(title: string, paragraphs: string[]): PageContent {
    return { title, paragraphs };
}

async function credentials(
    options: AuthorizeOptions,
    client: SecretManagerServiceClient,
    redactor: Redactor,
    store: <T>(what: string, run: () => Promise<T>) => Promise<T>,
): Promise<{ clientId: string; clientSecret: string }> {
    if (options.clientId && options.clientSecret) return { clientId: options.clientId, clientSecret: options.clientSecret };
    // The same adapter the refresher uses, pointed at the two credential secrets: newest enabled version, read by
    // number. It remembers every value it reads as a secret; the client id is not one (it is in the authorize
    // address), so that secret is read through a reader with a redactor of its own.
    const readerWith = (r: Redactor) =>
        createSecretManagerTokenStore({
            client,
            projectId: options.projectId,
            secrets: { refresh: options.secrets.clientId, access: options.secrets.clientSecret },
            retryBudgetMs: options.storeRetryBudgetMs,
            redactor: r,
        });
    const publicReader = readerWith(new Redactor());
    const secretReader = readerWith(redactor);
    const newest = async (kind: "refresh" | "access", secretId: string, flag: string): Promise<string> => {
        const reader = kind === "refresh" ? publicReader : secretReader;
        const versions = await store(`listing ${secretId}`, () => reader.listEnabledVersions(kind));
        const version = versions[0]?.version;
        if (version === undefined) {
            throw new Stop(
                `the secret ${secretId} has no enabled version. Nothing was written. Run \`pulumi up\` (it stores the configured value), or pass ${flag}.`,
            );
        }
        return (await store(`reading ${secretId} version ${version}`, () => reader.readVersion(kind, version))).trim();
    };
    const clientId = options.clientId ?? (await newest("refresh", options.secrets.clientId, "--client-id"));
    const clientSecret = options.clientSecret ?? (await newest("access", options.secrets.clientSecret, "--client-secret (or B24_CLIENT_SECRET)"));
    redactor.add(clientSecret);
    return { clientId, clientSecret };
}

if (require.main === module) {
    runAuthorize({
        argv: process.argv.slice(2),
        env: process.env,
        stdin: process.stdin,
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
    }).then(
        (code) => {
            process.exitCode = code;
            // Stdin in paste mode and gRPC channels may keep the loop alive; the work is done.
            setTimeout(() => process.exit(code), 100).unref();
            process.stdin.pause();
        },
        () => process.exit(1),
    );
}
