// The `oauthCallback` HTTP entry point: tokens arrive with no human step at all.
//   GET  ?code&state&domain&member_id   Bitrix24's OAuth redirect ("Your handler path" = this URL):
//        the code is exchanged at once and the pair stored.
//   POST event=ONAPPINSTALL&auth[...]   the install event ("Initial installation path" = this URL):
//        the event's refresh token is redeemed once at the token endpoint (which proves it genuine and
//        yields a fresh pair), the pair stored, and the event's application_token recorded as a hash.
// Anything from another portal, a bad state, missing or malformed fields, or a body over 64 KiB is
// refused with a 4xx and nothing stored; the WARNING line it logs holds no token.
import { randomUUID } from "node:crypto";
import { oauthClientFor } from "./adapters/bitrix24-oauth-client";
import { pageHeaders, renderPage } from "./adapters/html-page";
import { createJsonLog } from "./adapters/json-log";
import { Redactor } from "./adapters/redactor";
import { createTokenStoreFactory } from "./adapters/secret-manager-store";
import { readCallbackConfig, type CallbackConfig } from "./callback-config";
import {
    applicationTokenHash,
    callbackState,
    checkIssuedTokens,
    checkRedirect,
    isPortalDomain,
    normalizePortalDomain,
    type AuthorizationVia,
    type PortalCheck,
} from "./core/authorization";
import { classifyCallback, maxCallbackBodyBytes, type CallbackRefusal } from "./core/callback-request";
import type { Clock, Log, OAuthFailure, OAuthResult } from "./core/ports";
import { StoreError } from "./core/ports";
import { storeAuthorizedTokens } from "./core/store-authorization";

/** Our lease while writing; short, since the writes take seconds. */
const leaseSeconds = 60;
/** How long to wait for a refresher run that holds the lease. */
const leaseWaitMs = 15_000;

/** The parts of the framework's (express) request and response the handler uses. */
export interface CallbackRequestLike {
    method: string;
    originalUrl?: string;
    url?: string;
    headers: Record<string, string | string[] | undefined>;
    rawBody?: Buffer;
    body?: unknown;
}

export interface CallbackResponseLike {
    status(code: number): CallbackResponseLike;
    set(headers: Record<string, string>): CallbackResponseLike;
    send(body: string): unknown;
}

export interface CallbackDependencies {
    env?: Record<string, string | undefined>;
    clock?: Clock;
    writeLine?: (line: string) => void;
}

interface Answer {
    status: number;
    title: string;
    paragraphs: string[];
}

const refusalText: Record<CallbackRefusal["code"], string> = {
    method_not_allowed: "Only GET (Bitrix24's OAuth redirect) and POST (Bitrix24's install event) are accepted here",
    body_too_large: `The request body is larger than ${maxCallbackBodyBytes / 1024} KiB; Bitrix24 never sends that much`,
    unsupported_media_type: "The request body is neither a form nor JSON",
    missing_fields: "The request lacks fields Bitrix24 always sends",
    malformed_fields: "Some fields do not look like Bitrix24's",
    unsupported_event: "Only the ONAPPINSTALL event is handled here",
    authorization_denied: "Bitrix24 reported that the authorization did not happen",
};

function portalRefusal(check: Exclude<PortalCheck, { ok: true }>, config: CallbackConfig): Answer {
    const portal = config.portalDomain;
    switch (check.code) {
        case "bad_state":
        case "missing_state":
            return {
                status: 403,
                title: "Authorization refused",
                paragraphs: [
                    "This redirect did not start from this stack's authorize address (its state parameter does not match), so nothing was stored.",
                    "Start the authorization from the authorize URL the stack prints (`pulumi stack output authorizeUrl --show-secrets`) " +
                        "or run `npm run authorize` from a checkout.",
                ],
            };
        case "wrong_portal":
            return {
                status: 403,
                title: "Authorization refused",
                paragraphs: [`These tokens are for another Bitrix24 portal; this stack accepts only ${portal}. Nothing was stored.`],
            };
        case "wrong_member":
        case "unverifiable_portal":
            return {
                status: 403,
                title: "Authorization refused",
                paragraphs: [`Bitrix24's answer does not belong to the configured portal ${portal} (member_id differs). Nothing was stored.`],
            };
        case "no_refresh_token":
            return {
                status: 502,
                title: "Authorization failed",
                paragraphs: ["Bitrix24 answered without a refresh token, so there is nothing the refresher could keep alive. Nothing was stored."],
            };
    }
}

function oauthFailureAnswer(failure: OAuthFailure, via: AuthorizationVia): { answer: Answer; hostile: boolean } {
    const again =
        via === "redirect"
            ? "Open the authorize address again to get a new code."
            : "Reinstall the application in Bitrix24 to send a new install event.";
    switch (failure.code) {
        case "invalid_grant":
        case "expired_token":
            return {
                hostile: via === "install",
                answer: {
                    status: via === "install" ? 403 : 400,
                    title: "Authorization failed",
                    paragraphs: [
                        via === "redirect"
                            ? `Bitrix24 did not accept the authorization code (${failure.code}): it expired (codes live 30 seconds) or was already used. Nothing was stored.`
                            : `Bitrix24 did not accept the event's refresh token (${failure.code}). Nothing was stored.`,
                        again,
                    ],
                },
            };
        case "invalid_client":
            return {
                hostile: false,
                answer: {
                    status: 502,
                    title: "Authorization failed",
                    paragraphs: [
                        "Bitrix24 rejected the application's client id or secret (invalid_client). Nothing was stored.",
                        "Fix the credentials: `pulumi config set clientId …`, `pulumi config set --secret clientSecret …`, `pulumi up`.",
                    ],
                },
            };
        case "payment_required":
            return {
                hostile: false,
                answer: {
                    status: 502,
                    title: "Authorization failed",
                    paragraphs: ["The portal's plan does not allow this application (PAYMENT_REQUIRED). Nothing was stored."],
                },
            };
        default:
            return {
                hostile: false,
                answer: {
                    status: 502,
                    title: "Authorization failed",
                    paragraphs: [`Bitrix24's token endpoint could not be used (${failure.code}${failure.detail ? `: ${failure.detail}` : ""}). Nothing was stored.`, again],
                },
            };
    }
}

export function createOAuthCallbackHandler(deps: CallbackDependencies = {}) {
    const clock = deps.clock ?? { now: () => Date.now() };
    const tokenStore = createTokenStoreFactory();

    return async function oauthCallback(req: CallbackRequestLike, res: CallbackResponseLike): Promise<void> {
        const env = deps.env ?? process.env;
        const redactor = new Redactor();
        const log = createJsonLog(redactor, deps.writeLine);
        const respond = (answer: Answer) => {
            res.status(answer.status).set({ ...pageHeaders }).send(redactor.scrub(renderPage(answer)));
        };
        try {
            await handle(req, env, redactor, log, respond);
        } catch (error) {
            // Nothing here is expected to throw; if it does, answer without details (they might hold a value).
            log.write({
                severity: "ERROR",
                event: "authorize.failed",
                message: `OAuth callback failed unexpectedly: ${error instanceof Error ? error.name : "unknown error"}`,
            });
            respond({ status: 500, title: "Authorization failed", paragraphs: ["An unexpected error happened; nothing may have been stored."] });
        }
    };

    async function handle(
        req: CallbackRequestLike,
        env: Record<string, string | undefined>,
        redactor: Redactor,
        log: Log,
        respond: (answer: Answer) => void,
    ): Promise<void> {
        const url = new URL(req.originalUrl ?? req.url ?? "/", "http://callback.invalid");
        if (/\/(favicon\.ico|robots\.txt)$/.test(url.pathname)) {
            // What a browser asks for on its own after the redirect: not a request to judge or log.
            respond({ status: 404, title: "Not found", paragraphs: ["Nothing here."] });
            return;
        }
        // Every value that may be a secret is known to the redactor before anything is logged.
        for (const key of ["code", "state"]) redactor.add(url.searchParams.get(key) ?? undefined);
        const classified = classifyCallback({
            method: req.method,
            query: url.searchParams,
            contentType: headerValue(req.headers["content-type"]),
            rawBody: req.rawBody,
            parsedBody: req.body,
        });
        if (classified.ok && classified.request.kind === "install") {
            const e = classified.request.event;
            for (const v of [e.accessToken, e.refreshToken, e.applicationToken]) redactor.add(v);
        }

        const read = readCallbackConfig(env);
        if (!read.ok) {
            redactor.add(env.B24_CLIENT_SECRET);
            log.write({
                severity: "CRITICAL",
                event: "authorize.failed",
                message: `The OAuth callback is not configured; run \`pulumi up\`. Problems: ${read.problems.join("; ")}`,
                failure: "missing_config",
            });
            respond({ status: 500, title: "Not configured", paragraphs: ["This callback is not configured yet; nothing was stored."] });
            return;
        }
        const config = read.config;
        redactor.add(config.clientSecret);

        const refused = (answer: Answer, reason: string, fields: Record<string, unknown> = {}) => {
            log.write({
                severity: "WARNING",
                event: "authorize.refused",
                message: `Refused an OAuth callback request (${reason}); nothing was stored`,
                reason,
                status: answer.status,
                method: req.method,
                ...fields,
            });
            respond(answer);
        };

        if (!classified.ok) {
            const r = classified.refusal;
            const detail = [r.fields?.length ? `: ${r.fields.join(", ")}` : "", r.detail ? ` (${r.detail})` : ""].join("");
            refused({ status: r.status, title: "Request refused", paragraphs: [`${refusalText[r.code]}${detail}. Nothing was stored.`] }, r.code, {
                ...(r.fields ? { fields: r.fields } : {}),
                ...(r.detail ? { detail: r.detail } : {}),
            });
            return;
        }

        const request = classified.request;
        const via: AuthorizationVia = request.kind;
        const claimed = request.kind === "redirect" ? request.params : { domain: request.event.domain, memberId: request.event.memberId };
        const claimedFields = {
            via,
            portal: config.portalDomain,
            receivedDomain: safeHost(claimed.domain),
            receivedMemberId: claimed.memberId,
        };

        // Before anything is spent: the state (redirects only) and the portal the request names.
        const before =
            request.kind === "redirect"
                ? checkRedirect(request.params, {
                      portalDomain: config.portalDomain,
                      memberId: config.memberId,
                      expectedState: callbackState({ clientId: config.clientId, clientSecret: config.clientSecret, portalDomain: config.portalDomain }),
                      stateRequired: true,
                  })
                : checkRedirect({ code: "-", domain: request.event.domain, memberId: request.event.memberId }, {
                      portalDomain: config.portalDomain,
                      memberId: config.memberId,
                  });
        if (!before.ok) {
            refused(portalRefusal(before, config), before.code, claimedFields);
            return;
        }

        const oauth = oauthClientFor(config, clock, redactor);
        let answer: OAuthResult;
        if (request.kind === "redirect") {
            answer = await oauth.exchangeCode(request.params.code);
        } else {
            // Redeeming the event's refresh token proves it genuine (only Bitrix24 issues live ones for our
            // client) and gives a pair no one else has seen. If no new refresh token comes back, the old one stays live.
            answer = await oauth.refresh(request.event.refreshToken);
            if (answer.ok && !answer.tokens.refreshToken) answer.tokens.refreshToken = request.event.refreshToken;
        }
        if (!answer.ok) {
            const { answer: page, hostile } = oauthFailureAnswer(answer.failure, via);
            if (hostile || page.status < 500) {
                refused(page, answer.failure.code, { ...claimedFields, oauthStatus: answer.failure.status });
            } else {
                log.write({
                    severity: "ERROR",
                    event: "authorize.failed",
                    message: `Could not complete a Bitrix24 authorization (${via}): token endpoint ${answer.failure.code}; nothing was stored`,
                    failure: answer.failure.code,
                    oauthStatus: answer.failure.status,
                    detail: answer.failure.detail,
                    via,
                });
                respond(page);
            }
            return;
        }
        const tokens = answer.tokens;

        const after = checkIssuedTokens(tokens, {
            portalDomain: config.portalDomain,
            memberId: config.memberId,
            redirectDomain: claimed.domain,
            redirectMemberId: claimed.memberId,
        });
        if (!after.ok) {
            refused(portalRefusal(after, config), after.code, { ...claimedFields, answeredMemberId: tokens.memberId });
            return;
        }

        const store = tokenStore(config, redactor);
        let stored;
        try {
            stored = await storeAuthorizedTokens(
                { store, clock },
                {
                    tokens,
                    via,
                    applicationTokenSha256: request.kind === "install" ? applicationTokenHash(request.event.applicationToken) : undefined,
                    holder: `oauth-callback/${randomUUID()}`,
                    leaseSeconds,
                    leaseWaitMs,
                },
            );
        } catch (error) {
            if (!(error instanceof StoreError)) throw error;
            log.write({
                severity: "ERROR",
                event: "authorize.failed",
                message: `Bitrix24 issued tokens (${via}) but Secret Manager did not store the refresh token (${error.operation}: ${error.message}); nothing usable was stored`,
                failure: `store_${error.code}`,
                via,
            });
            respond({
                status: 503,
                title: "Authorization failed",
                paragraphs: ["Bitrix24 issued tokens but Secret Manager did not accept them, so nothing usable was stored. Try again in a few minutes."],
            });
            return;
        }

        const expires = new Date(stored.expiresAtMs).toISOString();
        for (const warning of stored.warnings) {
            log.write({ severity: "WARNING", event: "refresh.warning", message: `Authorization stored with a gap: ${warning}`, via });
        }
        log.write({
            severity: "NOTICE",
            event: "authorize.stored",
            message: `Stored a Bitrix24 authorization (${via}) for ${config.portalDomain}: refresh token v${stored.refreshVersion}, access token ${
                stored.accessVersion !== undefined ? `v${stored.accessVersion}` : "not stored"
            }, expires ${expires}`,
            via,
            portal: config.portalDomain,
            memberId: tokens.memberId,
            refreshVersion: stored.refreshVersion,
            accessVersion: stored.accessVersion,
            expiresAt: expires,
            applicationTokenRecorded: request.kind === "install",
        });
        respond({
            status: 200,
            title: "Bitrix24 authorized",
            paragraphs: [
                `Tokens for ${config.portalDomain} are stored in Secret Manager (refresh token version ${stored.refreshVersion}` +
                    `${stored.accessVersion !== undefined ? `, access token version ${stored.accessVersion}` : ""}); the access token expires ${expires}.`,
                "The refresher keeps them alive from here. You can close this page.",
            ],
        });
    }
}

function headerValue(value: string | string[] | undefined): string | undefined {
    return Array.isArray(value) ? value[0] : value;
}

/** A received domain for a log line: only when it is a plain host name. */
function safeHost(value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    const host = normalizePortalDomain(value);
    return isPortalDomain(host) ? host : "(malformed)";
}
