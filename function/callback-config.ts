// The `oauthCallback` entry point's environment: the refresher's (config.ts, same variables, same
// defaults) plus the portal it accepts tokens from. Every problem names the variable and its fix.
import { isPortalDomain, normalizePortalDomain } from "./core/authorization";
import { readRefresherConfig, type RefresherConfig } from "./config";

export interface CallbackConfig extends RefresherConfig {
    /** Required here: tokens from any other portal are refused. */
    portalDomain: string;
    /** Optional: when set, the portal's member_id must also match. */
    memberId?: string;
}

export type CallbackConfigResult = { ok: true; config: CallbackConfig } | { ok: false; problems: string[] };

export function readCallbackConfig(env: Record<string, string | undefined>): CallbackConfigResult {
    const base = readRefresherConfig(env);
    const problems = base.ok ? [] : [...base.problems];
    const portalDomain = normalizePortalDomain(env.B24_PORTAL_DOMAIN ?? "");
    if (!portalDomain) {
        problems.push("B24_PORTAL_DOMAIN is not set: the stack sets it from `pulumi config set portalDomain <your>.bitrix24.com`; run `pulumi up`");
    } else if (!isPortalDomain(portalDomain)) {
        problems.push(`B24_PORTAL_DOMAIN must be a host name such as example.bitrix24.com, got "${env.B24_PORTAL_DOMAIN}"`);
    }
    const memberId = (env.B24_MEMBER_ID ?? "").trim() || undefined;
    if (memberId !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(memberId)) {
        problems.push(`B24_MEMBER_ID must be the portal's member_id (letters and digits), got "${memberId}"`);
    }
    if (!base.ok || problems.length > 0) return { ok: false, problems };
    return { ok: true, config: { ...base.config, portalDomain, ...(memberId ? { memberId } : {}) } };
}
