// Stack configuration: read once, typed, validated before any resource exists. Every problem
// names the key and the exact `pulumi config set …` that fixes it, all in one message.
import * as pulumi from "@pulumi/pulumi";
import { cronSyntaxProblem, defaultSchedule, refreshMarginSeconds, ScheduleTooSparseError } from "./margin";

/** Defaults for the optional keys; Pulumi.yaml declares the same values (a test compares them). */
export const configDefaults = {
    schedule: defaultSchedule,
    timeZone: "Etc/UTC",
    oauthTokenUrl: "https://oauth.bitrix.info/oauth/token/",
    alertEmail: "",
    callback: false,
    memberId: "",
} as const;

/** The keys of the project's own namespace that the program reads, exactly those Pulumi.yaml declares. */
export const projectConfigKeys = [
    "portalDomain",
    "clientId",
    "clientSecret",
    "schedule",
    "timeZone",
    "oauthTokenUrl",
    "alertEmail",
    "callback",
    "memberId",
] as const;

/** Provider keys the program reads. Pulumi.yaml cannot declare them without a value, so the README and Pulumi.dev.yaml do. */
export const providerConfigKeys = ["gcp:project", "gcp:region"] as const;

export type ProjectConfigKey = (typeof projectConfigKeys)[number];
type StringDefaultKey = { [K in keyof typeof configDefaults]: (typeof configDefaults)[K] extends string ? K : never }[keyof typeof configDefaults];
export type ConfigKey = ProjectConfigKey | (typeof providerConfigKeys)[number];

export interface StackConfig {
    project: string;
    region: string;
    portalDomain: string;
    clientId: string;
    /** Always a Pulumi secret. */
    clientSecret: pulumi.Output<string>;
    schedule: string;
    timeZone: string;
    oauthTokenUrl: string;
    /** Undefined when no alert e-mail is configured. */
    alertEmail?: string;
    /** Derived from `schedule`: longest gap between two ticks + 600 s. */
    refreshMarginSeconds: number;
    /** Deploy the public `oauthCallback` function. */
    callback: boolean;
    /** The portal's member_id the callback also checks; undefined when not configured. */
    memberId?: string;
}

/** Where configuration comes from: the Pulumi runtime in a real run, a plain map in tests. */
export interface ConfigSource {
    /** Raw value of a key given as `gcp:project` or as a bare project key such as `portalDomain`. */
    get(key: ConfigKey): string | undefined;
    /** True when the stack stores the key encrypted (`pulumi config set --secret`). */
    isSecret(key: ConfigKey): boolean;
}

/** One configuration problem: the key, what is wrong, and the command that fixes it. */
export interface ConfigProblem {
    key: ConfigKey;
    problem: string;
    fix: string;
}

/** Invalid stack configuration. A RunError, so Pulumi prints the message without a stack trace. */
export class ConfigError extends pulumi.RunError {
    constructor(readonly problems: ConfigProblem[]) {
        super(
            [
                `Invalid stack configuration (${problems.length} ${problems.length === 1 ? "problem" : "problems"}):`,
                ...problems.map((p) => `  - ${p.key}: ${p.problem}\n    fix: ${p.fix}`),
            ].join("\n"),
        );
        this.name = "ConfigError";
    }
}

const hostnamePattern = /^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `value` is not a bare Bitrix24 portal host such as `example.bitrix24.com`, or undefined. */
export function portalDomainProblem(value: string): string | undefined {
    if (hostnamePattern.test(value)) return undefined;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /[/?#:@]/.test(value)) {
        return `"${value}" is not a bare host name: give the portal's host only, without https://, path or port`;
    }
    return `"${value}" is not a host name such as example.bitrix24.com`;
}

/** Best guess at the host the user meant, for the fix command (`https://X.bitrix24.pl/` → `X.bitrix24.pl`). */
export function portalDomainSuggestion(value: string): string {
    try {
        const host = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`).hostname.toLowerCase();
        if (hostnamePattern.test(host)) return host;
    } catch {
        // fall through to the placeholder
    }
    return "<your-portal>.bitrix24.com";
}

/** Why `value` is not an IANA time zone name that Cloud Scheduler and cron-parser both understand. */
export function timeZoneProblem(value: string): string | undefined {
    if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(value)) {
        return `"${value}" is not an IANA time zone name such as Etc/UTC or Europe/Warsaw`;
    }
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: value });
        return undefined;
    } catch {
        return `"${value}" is not a time zone this platform's time zone database knows, such as Etc/UTC or Europe/Warsaw`;
    }
}

/** Why `value` is not an https URL without credentials or fragment. */
export function httpsUrlProblem(value: string): string | undefined {
    let url: URL;
    try {
        url = new URL(value);
    } catch {
        return `"${value}" is not a URL`;
    }
    if (url.protocol !== "https:") return `"${value}" must use https: the client secret and the tokens travel in this request`;
    if (url.username || url.password || url.hash) return `"${value}" must not carry credentials or a #fragment`;
    return undefined;
}

/** Why `value` is not a Google Cloud project id (6-30 lowercase letters, digits, hyphens). */
export function projectIdProblem(value: string): string | undefined {
    return /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(value) ? undefined : `"${value}" is not a Google Cloud project id`;
}

/** Why `value` is not a Google Cloud region name such as europe-central2. */
export function regionProblem(value: string): string | undefined {
    return /^[a-z]+-[a-z]+\d+$/.test(value) ? undefined : `"${value}" is not a Google Cloud region such as europe-central2`;
}

/** Why `value` is not a plausible e-mail address. */
export function emailProblem(value: string): string | undefined {
    return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) ? undefined : `"${value}" is not an e-mail address`;
}

/** Why `value` is not a Bitrix24 application client id (non-empty, no spaces). */
export function clientIdProblem(value: string): string | undefined {
    return /^[\x21-\x7e]{1,200}$/.test(value) ? undefined : `"${value}" is not a client id such as local.0123456789abcd.01234567`;
}

/** Why `value` is not `true` or `false` (as `pulumi config set` stores a boolean), or undefined. */
export function booleanProblem(value: string): string | undefined {
    return value === "true" || value === "false" ? undefined : `"${value}" is not a boolean: set true or false`;
}

/** Why `value` is not a Bitrix24 member_id (letters, digits, `_`, `.`, `-`; what the callback accepts), or undefined. */
export function memberIdProblem(value: string): string | undefined {
    return /^[A-Za-z0-9_.-]{1,128}$/.test(value) ? undefined : `"${value}" is not a Bitrix24 member_id such as a223c6b3710f85df22e9377d6c4f7553`;
}

/** The command that sets `key`; values with `<placeholders>` stay bare, anything else a shell would split is quoted. */
export function configSetCommand(key: ConfigKey, value: string, secret = false): string {
    const bare = /^[A-Za-z0-9_./:@+<>-]+$/.test(value);
    return `pulumi config set ${secret ? "--secret " : ""}${key} ${bare ? value : `"${value}"`}`;
}

/**
 * Reads and validates the whole stack configuration from `source`. Collects every problem and
 * throws one {@link ConfigError}; returns a typed, complete config otherwise.
 */
export function parseStackConfig(source: ConfigSource, now: Date = new Date()): StackConfig {
    const problems: ConfigProblem[] = [];
    const raw = (key: ConfigKey) => {
        const value = source.get(key);
        return value === undefined ? undefined : value.trim();
    };
    const required = (key: ConfigKey, example: string) => {
        const value = raw(key);
        if (!value) problems.push({ key, problem: "is not set", fix: configSetCommand(key, example) });
        return value ?? "";
    };
    const optional = (key: StringDefaultKey) => {
        const value = raw(key);
        return value === undefined || value === "" ? configDefaults[key] : value;
    };

    const project = required("gcp:project", "<your-project-id>");
    const projectProblem = project ? projectIdProblem(project) : undefined;
    if (projectProblem) problems.push({ key: "gcp:project", problem: projectProblem, fix: configSetCommand("gcp:project", "<your-project-id>") });
    const region = required("gcp:region", "europe-central2");
    const badRegion = region ? regionProblem(region) : undefined;
    if (badRegion) problems.push({ key: "gcp:region", problem: badRegion, fix: configSetCommand("gcp:region", "europe-central2") });

    const portalDomain = required("portalDomain", "<your-portal>.bitrix24.com");
    const domainProblem = portalDomain ? portalDomainProblem(portalDomain) : undefined;
    if (domainProblem) {
        problems.push({ key: "portalDomain", problem: domainProblem, fix: configSetCommand("portalDomain", portalDomainSuggestion(portalDomain)) });
    }

    const clientId = required("clientId", "<client-id>");
    const idProblem = clientId ? clientIdProblem(clientId) : undefined;
    if (idProblem) problems.push({ key: "clientId", problem: idProblem, fix: configSetCommand("clientId", "<client-id>") });

    // The secret's value is only checked for presence; it never appears in a message.
    const secretFix = configSetCommand("clientSecret", "<client-secret>", true);
    const clientSecretValue = source.get("clientSecret");
    if (clientSecretValue === undefined || clientSecretValue.trim() === "") {
        problems.push({ key: "clientSecret", problem: "is not set", fix: secretFix });
    } else if (!source.isSecret("clientSecret")) {
        problems.push({ key: "clientSecret", problem: "is stored in plain text in the stack file; it must be encrypted", fix: secretFix });
    }

    const timeZone = optional("timeZone");
    const zoneProblem = timeZoneProblem(timeZone);
    if (zoneProblem) problems.push({ key: "timeZone", problem: zoneProblem, fix: configSetCommand("timeZone", configDefaults.timeZone) });

    const schedule = optional("schedule");
    const scheduleFix = configSetCommand("schedule", configDefaults.schedule);
    let margin = 0;
    const syntaxProblem = cronSyntaxProblem(schedule);
    if (syntaxProblem) {
        problems.push({ key: "schedule", problem: `"${schedule}" is not a valid cron schedule: ${syntaxProblem}`, fix: scheduleFix });
    } else if (!zoneProblem) {
        try {
            margin = refreshMarginSeconds(schedule, timeZone, now);
        } catch (error) {
            const problem =
                error instanceof ScheduleTooSparseError
                    ? error.message
                    : `"${schedule}" is not a valid cron schedule: ${error instanceof Error ? error.message : String(error)}`;
            problems.push({ key: "schedule", problem, fix: scheduleFix });
        }
    }

    const oauthTokenUrl = optional("oauthTokenUrl");
    const urlProblem = httpsUrlProblem(oauthTokenUrl);
    if (urlProblem) problems.push({ key: "oauthTokenUrl", problem: urlProblem, fix: configSetCommand("oauthTokenUrl", configDefaults.oauthTokenUrl) });

    const alertEmail = optional("alertEmail");
    const mailProblem = alertEmail ? emailProblem(alertEmail) : undefined;
    if (mailProblem) problems.push({ key: "alertEmail", problem: mailProblem, fix: configSetCommand("alertEmail", "<you@example.com>") });

    const callbackValue = raw("callback") || String(configDefaults.callback);
    const callbackProblem = booleanProblem(callbackValue);
    if (callbackProblem) problems.push({ key: "callback", problem: callbackProblem, fix: configSetCommand("callback", "true") });

    // Checked even with the callback off (only the callback uses it), so switching it off needs no second command.
    const memberId = optional("memberId");
    const badMemberId = memberId ? memberIdProblem(memberId) : undefined;
    if (badMemberId) problems.push({ key: "memberId", problem: badMemberId, fix: configSetCommand("memberId", "<member-id>") });

    if (problems.length > 0) throw new ConfigError(problems);
    return {
        project,
        region,
        portalDomain,
        clientId,
        clientSecret: pulumi.secret(clientSecretValue!.trim()),
        schedule,
        timeZone,
        oauthTokenUrl,
        alertEmail: alertEmail || undefined,
        refreshMarginSeconds: margin,
        callback: callbackValue === "true",
        memberId: memberId || undefined,
    };
}

/**
 * `runtime.isConfigSecret` is how the SDK itself tells encrypted keys apart (from the language
 * host's PULUMI_CONFIG_SECRET_KEYS); it is exported at runtime but marked internal in the typings.
 */
function runtimeIsConfigSecret(fullKey: string): boolean {
    const probe = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;
    if (typeof probe !== "function") {
        throw new Error("@pulumi/pulumi no longer exposes runtime.isConfigSecret; infra/config.ts must learn another way to detect plain-text secrets");
    }
    return probe(fullKey);
}

/** The Pulumi runtime as a {@link ConfigSource}: bare keys in the project's namespace, `ns:key` elsewhere. */
export function pulumiConfigSource(): ConfigSource {
    const projectName = pulumi.getProject();
    const split = (key: ConfigKey): [string, string] => {
        const at = key.indexOf(":");
        return at < 0 ? [projectName, key] : [key.slice(0, at), key.slice(at + 1)];
    };
    return {
        get(key) {
            const [namespace, name] = split(key);
            return new pulumi.Config(namespace).get(name);
        },
        isSecret(key) {
            const [namespace, name] = split(key);
            return runtimeIsConfigSecret(`${namespace}:${name}`);
        },
    };
}

/** The validated configuration of the current stack. */
export function loadStackConfig(): StackConfig {
    return parseStackConfig(pulumiConfigSource());
}
