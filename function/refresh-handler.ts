// The CloudEvent handler: builds the ports from the environment, runs one refresh, and turns
// the outcome into what Eventarc understands (return = done, throw = redeliver).
import { randomUUID } from "node:crypto";
import { oauthClientFor } from "./adapters/bitrix24-oauth-client";
import { createJsonLog } from "./adapters/json-log";
import { Redactor } from "./adapters/redactor";
import { createTokenStoreFactory } from "./adapters/secret-manager-store";
import { readRefresherConfig, type RefresherConfig } from "./config";
import { permanentFailureMessage } from "./core/failure-messages";
import type { Clock } from "./core/ports";
import { refreshTokens } from "./core/refresh-tokens";

/**
 * The function's timeout (120 s) plus a minute: the platform ends any holder before its lease runs
 * out, and after a crash the redeliveries take over within three minutes.
 */
export const leaseSeconds = 180;

export interface HandlerDependencies {
    env?: Record<string, string | undefined>;
    clock?: Clock;
    writeLine?: (line: string) => void;
}

export function reauthorizeHint(config: Pick<RefresherConfig, "projectId" | "clientId" | "portalDomain">): string {
    const cli = `run \`npm run authorize -- --project ${config.projectId}\` from a b24-token-rotation checkout`;
    if (!config.portalDomain) return cli;
    return `${cli}, or open https://${config.portalDomain}/oauth/authorize/?client_id=${encodeURIComponent(config.clientId)} and finish the app's install`;
}

export function createRefreshTokensHandler(deps: HandlerDependencies = {}) {
    const clock = deps.clock ?? { now: () => Date.now() };
    const tokenStore = createTokenStoreFactory();

    return async function refreshTokensHandler(event: { id?: string } = {}): Promise<void> {
        const env = deps.env ?? process.env;
        const redactor = new Redactor();
        const log = createJsonLog(redactor, deps.writeLine);
        const read = readRefresherConfig(env);
        if (!read.ok) {
            redactor.add(env.B24_CLIENT_SECRET);
            log.write({
                severity: "CRITICAL",
                event: "refresh.failed",
                message: `${permanentFailureMessage("missing_config", { reauthorize: "" })} Problems: ${read.problems.join("; ")}`,
                failure: "missing_config",
            });
            return;
        }
        const config = read.config;
        redactor.add(config.clientSecret);

        const store = tokenStore(config, redactor);
        const oauth = oauthClientFor(config, clock, redactor);
        await refreshTokens(
            { store, oauth, clock, log },
            {
                marginSeconds: config.marginSeconds,
                keepVersions: config.keepVersions,
                leaseSeconds,
                holder: `${event.id || "manual"}/${randomUUID()}`,
                criticalRepeatSeconds: 3600,
                hints: { reauthorize: reauthorizeHint(config) },
            },
        );
    };
}
