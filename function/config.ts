// The refresher's environment (DESIGN.md, runtime contract), read and checked in one place.
// Every problem names the variable and how to fix it.

export interface RefresherConfig {
    projectId: string;
    clientId: string;
    clientSecret: string;
    secrets: { access: string; refresh: string };
    tokenUrl: string;
    marginSeconds: number;
    keepVersions: number;
    /** Optional: the portal host, used to print the authorize URL in re-authorization hints. */
    portalDomain?: string;
    /** Optional: plaintext gRPC to an emulator at host:port. */
    emulatorHost?: string;
    oauthResponseTimeoutMs: number;
    storeRetryBudgetMs: number;
}

export type ConfigResult = { ok: true; config: RefresherConfig } | { ok: false; problems: string[] };

export const refresherDefaults = {
    ACCESS_TOKEN_SECRET: "b24-access-token",
    REFRESH_TOKEN_SECRET: "b24-refresh-token",
    B24_OAUTH_TOKEN_URL: "https://oauth.bitrix.info/oauth/token/",
    REFRESH_MARGIN_SECONDS: "1200",
    KEEP_VERSIONS: "2",
    OAUTH_RESPONSE_TIMEOUT_SECONDS: "30",
    STORE_RETRY_BUDGET_SECONDS: "20",
} as const;

const secretIdPattern = /^[A-Za-z0-9_-]{1,255}$/;
const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);

export function readRefresherConfig(env: Record<string, string | undefined>): ConfigResult {
    const problems: string[] = [];
    const get = (key: keyof typeof refresherDefaults) => (env[key] ?? "").trim() || refresherDefaults[key];
    const required = (key: string, fix: string) => {
        const value = (env[key] ?? "").trim();
        if (!value) problems.push(`${key} is not set: ${fix}`);
        return value;
    };
    const integer = (key: keyof typeof refresherDefaults, min: number, max: number) => {
        const raw = get(key);
        const n = Number(raw);
        if (!/^\d+$/.test(raw) || n < min || n > max) {
            problems.push(`${key} must be a whole number from ${min} to ${max}, got "${raw}"`);
            return Number(refresherDefaults[key]);
        }
        return n;
    };

    const projectId = required("PROJECT_ID", "set it to the Google Cloud project id (the stack sets it; run `pulumi up`)");
    const clientId = required("B24_CLIENT_ID", "the stack maps it from the b24-client-id secret; run `pulumi config set clientId …` and `pulumi up`");
    const clientSecret = required(
        "B24_CLIENT_SECRET",
        "the stack maps it from the b24-client-secret secret; run `pulumi config set --secret clientSecret …` and `pulumi up`",
    );
    const access = get("ACCESS_TOKEN_SECRET");
    const refresh = get("REFRESH_TOKEN_SECRET");
    for (const [key, value] of [["ACCESS_TOKEN_SECRET", access], ["REFRESH_TOKEN_SECRET", refresh]] as const) {
        if (!secretIdPattern.test(value)) problems.push(`${key} must be a secret id (letters, digits, - and _), got "${value}"`);
    }
    if (access === refresh) problems.push("ACCESS_TOKEN_SECRET and REFRESH_TOKEN_SECRET must name two different secrets");

    const tokenUrl = get("B24_OAUTH_TOKEN_URL");
    try {
        const url = new URL(tokenUrl);
        if (url.protocol !== "https:" && !(url.protocol === "http:" && loopbackHosts.has(url.hostname))) {
            problems.push(`B24_OAUTH_TOKEN_URL must be an https URL such as ${refresherDefaults.B24_OAUTH_TOKEN_URL}, got "${tokenUrl}"`);
        }
    } catch {
        problems.push(`B24_OAUTH_TOKEN_URL is not a URL: "${tokenUrl}"; the default is ${refresherDefaults.B24_OAUTH_TOKEN_URL}`);
    }

    const marginSeconds = integer("REFRESH_MARGIN_SECONDS", 60, 3540);
    const keepVersions = integer("KEEP_VERSIONS", 1, 100);
    const oauthResponseTimeoutMs = integer("OAUTH_RESPONSE_TIMEOUT_SECONDS", 1, 110) * 1000;
    const storeRetryBudgetMs = integer("STORE_RETRY_BUDGET_SECONDS", 1, 60) * 1000;

    const emulatorHost = (env.SECRET_MANAGER_EMULATOR_HOST ?? "").trim() || undefined;
    if (emulatorHost && !/^[^:\s]+:\d{1,5}$/.test(emulatorHost)) {
        problems.push(`SECRET_MANAGER_EMULATOR_HOST must be host:port such as 127.0.0.1:8085, got "${emulatorHost}"`);
    }
    const portalDomain = (env.B24_PORTAL_DOMAIN ?? "").trim() || undefined;

    if (problems.length > 0) return { ok: false, problems };
    return {
        ok: true,
        config: {
            projectId,
            clientId,
            clientSecret,
            secrets: { access, refresh },
            tokenUrl,
            marginSeconds,
            keepVersions,
            portalDomain,
            emulatorHost,
            oauthResponseTimeoutMs,
            storeRetryBudgetMs,
        },
    };
}
