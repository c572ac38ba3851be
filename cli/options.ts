// `npm run authorize` options: flags first, then the environment, then the stack's defaults.
// Parsing is pure (argv + env in, options or a usage problem out) so it is tested directly.
import { parseArgs } from "node:util";
import { isPortalDomain, normalizePortalDomain } from "../function/core/authorization";
import { refresherDefaults } from "../function/config";

export const usage = `Usage: npm run authorize -- --project PROJECT --portal PORTAL [options]

First authorization of the Bitrix24 application, replacing the guide's Part 2: prints the
address to open, catches Bitrix24's redirect (or takes the address you paste), exchanges the
code at once (a code lives 30 seconds), checks that the tokens belong to PORTAL, stores them in
Secret Manager exactly where the refresher looks, and proves them with one REST call (app.info).
No token is ever printed.

Where to store:
  --project ID              Google Cloud project of the stack (env PROJECT_ID or GOOGLE_CLOUD_PROJECT)
  --prefix PREFIX           secret name prefix of the stack (default "b24": b24-client-id,
                            b24-client-secret, b24-access-token, b24-refresh-token)
  --client-id-secret NAME   secret holding the client id (default PREFIX-client-id)
  --client-secret-secret NAME
                            secret holding the client secret (default PREFIX-client-secret)
  --access-token-secret NAME
                            secret for access tokens (env ACCESS_TOKEN_SECRET; default PREFIX-access-token)
  --refresh-token-secret NAME
                            secret for refresh tokens (env REFRESH_TOKEN_SECRET; default PREFIX-refresh-token)

Which portal and application:
  --portal HOST             the Bitrix24 portal, e.g. example.bitrix24.com (env B24_PORTAL_DOMAIN)
  --member-id ID            the portal's member_id; when given, Bitrix24's answer must name it (env B24_MEMBER_ID)
  --client-id ID            the app's client_id (env B24_CLIENT_ID); default: the newest enabled
                            version of the client-id secret, which \`pulumi up\` stored
  --client-secret SECRET    the app's client_secret (env B24_CLIENT_SECRET); default: the newest enabled
                            version of the client-secret secret. Prefer the secret or the environment:
                            a flag ends up in your shell history
  --redirect-uri URI        the redirect address registered for the app. http://localhost:PORT/PATH (or
                            http://127.0.0.1:PORT/PATH): this command listens on 127.0.0.1:PORT and catches
                            the redirect itself. Any other address (e.g. the guide's https://localhost/oauth)
                            or none: you paste the address the browser ends up at (env B24_REDIRECT_URI)
  --token-url URL           Bitrix24's token endpoint (env B24_OAUTH_TOKEN_URL; default
                            ${refresherDefaults.B24_OAUTH_TOKEN_URL})

Behaviour:
  --force                   store a new pair even though the stored one is live (this starts a second
                            token chain; the refresher continues the new one and the old one lapses)
  --timeout SECONDS         how long to wait for the redirect or the paste (default 300)
  --print-callback-url      print the authorize address for the deployed oauthCallback function (its
                            state is derived from the client secret) and exit; nothing is written
  --help                    this text

Environment: SECRET_MANAGER_EMULATOR_HOST=host:port uses a Secret Manager emulator (plaintext, no
credentials), as the function does; STORE_RETRY_BUDGET_SECONDS (default 15) bounds how long one Secret
Manager call is retried. Google Cloud is reached with application-default credentials
(\`gcloud auth application-default login\`).

Checked before anything is stored: the stack holds no live pair (recorded access-token expiry ahead
and no recorded failure) unless --force; the redirect's state is this run's (required when the
redirect is caught on localhost, checked whenever a pasted address carries one); the redirect's
domain is PORTAL (before the code is spent); the token answer's member_id equals the redirect's and
--member-id's; for a bare pasted code with no --member-id, the answer's client_endpoint host is PORTAL.

Exit status: 0 stored and proven (or URL printed); 1 failed, with what was and was not stored;
2 bad usage.`;

export interface SecretIds {
    clientId: string;
    clientSecret: string;
    access: string;
    refresh: string;
}

export interface AuthorizeOptions {
    projectId: string;
    portalDomain: string;
    memberId?: string;
    clientId?: string;
    clientSecret?: string;
    /** The app's redirect address, when given. */
    redirectUri?: string;
    /** Set when the redirect address is http://localhost:PORT/…: where to listen. */
    loopback?: { port: number; path: string };
    tokenUrl: string;
    secrets: SecretIds;
    force: boolean;
    timeoutMs: number;
    printCallbackUrl: boolean;
    emulatorHost?: string;
    storeRetryBudgetMs: number;
}

export type ParsedOptions = { kind: "help" } | { kind: "run"; options: AuthorizeOptions } | { kind: "usage_error"; problems: string[] };

const secretIdPattern = /^[A-Za-z0-9_-]{1,255}$/;
const loopbackHosts = new Set(["localhost", "127.0.0.1"]);

export function parseOptions(argv: string[], env: Record<string, string | undefined>): ParsedOptions {
    let values;
    try {
        values = parseArgs({
            args: argv,
            options: {
                project: { type: "string" },
                prefix: { type: "string" },
                "client-id-secret": { type: "string" },
                "client-secret-secret": { type: "string" },
                "access-token-secret": { type: "string" },
                "refresh-token-secret": { type: "string" },
                portal: { type: "string" },
                "member-id": { type: "string" },
                "client-id": { type: "string" },
                "client-secret": { type: "string" },
                "redirect-uri": { type: "string" },
                "token-url": { type: "string" },
                force: { type: "boolean", default: false },
                timeout: { type: "string" },
                "print-callback-url": { type: "boolean", default: false },
                help: { type: "boolean", default: false },
            },
            strict: true,
            allowPositionals: false,
        }).values;
    } catch (error) {
        return { kind: "usage_error", problems: [(error as Error).message] };
    }
    if (values.help) return { kind: "help" };

    const problems: string[] = [];
    const pick = (flag: string | undefined, ...envKeys: string[]) => {
        if (flag !== undefined) return flag.trim() || undefined;
        for (const key of envKeys) {
            const v = (env[key] ?? "").trim();
            if (v) return v;
        }
        return undefined;
    };

    const projectId = pick(values.project, "PROJECT_ID", "GOOGLE_CLOUD_PROJECT");
    if (!projectId) problems.push("--project is required (or set PROJECT_ID): the Google Cloud project the stack deployed to");
    else if (!/^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(projectId)) problems.push(`--project "${projectId}" is not a project id`);

    const portalRaw = pick(values.portal, "B24_PORTAL_DOMAIN");
    const portalDomain = portalRaw ? normalizePortalDomain(portalRaw) : "";
    if (!portalRaw) problems.push("--portal is required (or set B24_PORTAL_DOMAIN): your portal's host, e.g. example.bitrix24.com");
    else if (!isPortalDomain(portalDomain)) problems.push(`--portal "${portalRaw}" is not a host name such as example.bitrix24.com`);

    const memberId = pick(values["member-id"], "B24_MEMBER_ID");
    if (memberId !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(memberId)) problems.push(`--member-id "${memberId}" is not a member_id`);

    const prefix = values.prefix?.trim() || "b24";
    const secrets: SecretIds = {
        clientId: values["client-id-secret"]?.trim() || `${prefix}-client-id`,
        clientSecret: values["client-secret-secret"]?.trim() || `${prefix}-client-secret`,
        access: pick(values["access-token-secret"], "ACCESS_TOKEN_SECRET") ?? `${prefix}-access-token`,
        refresh: pick(values["refresh-token-secret"], "REFRESH_TOKEN_SECRET") ?? `${prefix}-refresh-token`,
    };
    for (const [flag, id] of [
        ["--client-id-secret", secrets.clientId],
        ["--client-secret-secret", secrets.clientSecret],
        ["--access-token-secret", secrets.access],
        ["--refresh-token-secret", secrets.refresh],
    ] as const) {
        if (!secretIdPattern.test(id)) problems.push(`${flag} "${id}" is not a secret id (letters, digits, - and _)`);
    }
    if (secrets.access === secrets.refresh) problems.push("the access-token and refresh-token secrets must be two different secrets");

    const tokenUrl = pick(values["token-url"], "B24_OAUTH_TOKEN_URL") ?? refresherDefaults.B24_OAUTH_TOKEN_URL;
    try {
        const url = new URL(tokenUrl);
        if (url.protocol !== "https:" && !(url.protocol === "http:" && loopbackHosts.has(url.hostname))) {
            problems.push(`--token-url must be an https URL such as ${refresherDefaults.B24_OAUTH_TOKEN_URL}, got "${tokenUrl}"`);
        }
    } catch {
        problems.push(`--token-url is not a URL: "${tokenUrl}"`);
    }

    const redirectUri = pick(values["redirect-uri"], "B24_REDIRECT_URI");
    let loopback: AuthorizeOptions["loopback"];
    if (redirectUri !== undefined) {
        let url: URL | undefined;
        try {
            url = new URL(redirectUri);
        } catch {
            problems.push(`--redirect-uri is not a URL: "${redirectUri}"`);
        }
        if (url && url.protocol === "http:" && loopbackHosts.has(url.hostname)) {
            if (!url.port) problems.push(`--redirect-uri ${redirectUri} needs an explicit port, e.g. http://localhost:8765/oauth`);
            else loopback = { port: Number(url.port), path: url.pathname.replace(/\/+$/, "") || "/" };
        } else if (url && url.protocol !== "https:" && url.protocol !== "http:") {
            problems.push(`--redirect-uri must be an http(s) address, got "${redirectUri}"`);
        }
    }

    let timeoutMs = 300_000;
    if (values.timeout !== undefined) {
        const n = Number(values.timeout);
        if (!/^\d+$/.test(values.timeout) || n < 1 || n > 3600) problems.push(`--timeout must be a whole number of seconds from 1 to 3600, got "${values.timeout}"`);
        else timeoutMs = n * 1000;
    }

    const emulatorHost = (env.SECRET_MANAGER_EMULATOR_HOST ?? "").trim() || undefined;
    if (emulatorHost && !/^[^:\s]+:\d{1,5}$/.test(emulatorHost)) {
        problems.push(`SECRET_MANAGER_EMULATOR_HOST must be host:port such as 127.0.0.1:8085, got "${emulatorHost}"`);
    }
    const budgetRaw = (env.STORE_RETRY_BUDGET_SECONDS ?? "").trim() || "15";
    const budget = Number(budgetRaw);
    if (!/^\d+$/.test(budgetRaw) || budget < 1 || budget > 120) {
        problems.push(`STORE_RETRY_BUDGET_SECONDS must be a whole number from 1 to 120, got "${budgetRaw}"`);
    }

    if (problems.length > 0) return { kind: "usage_error", problems };
    return {
        kind: "run",
        options: {
            projectId: projectId!,
            portalDomain,
            ...(memberId ? { memberId } : {}),
            ...(pick(values["client-id"], "B24_CLIENT_ID") ? { clientId: pick(values["client-id"], "B24_CLIENT_ID") } : {}),
            ...(pick(values["client-secret"], "B24_CLIENT_SECRET") ? { clientSecret: pick(values["client-secret"], "B24_CLIENT_SECRET") } : {}),
            ...(redirectUri ? { redirectUri } : {}),
            ...(loopback ? { loopback } : {}),
            tokenUrl,
            secrets,
            force: values.force ?? false,
            timeoutMs,
            printCallbackUrl: values["print-callback-url"] ?? false,
            ...(emulatorHost ? { emulatorHost } : {}),
            storeRetryBudgetMs: budget * 1000,
        },
    };
}

/** The address the portal admin opens. `redirect_uri` is sent only when one was given (as the guide did). */
export function authorizeUrl(input: { portalDomain: string; clientId: string; state: string; redirectUri?: string }): string {
    const url = new URL(`https://${input.portalDomain}/oauth/authorize/`);
    url.searchParams.set("client_id", input.clientId);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("state", input.state);
    if (input.redirectUri) url.searchParams.set("redirect_uri", input.redirectUri);
    return url.toString();
}
