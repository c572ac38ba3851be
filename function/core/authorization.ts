// A first authorization (or a re-authorization): the checks that tie an OAuth redirect or an
// install event to the configured portal, and the decisions around it. Pure: `npm run authorize`
// and the `oauthCallback` entry point both call these, and tests drive them directly.
// Decisions are data: every refusal is a snake_case code plus the values it compared.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IssuedTokens } from "./ports";
import type { RefreshState } from "./refresh-state";

/**
 * Annotations an authorization adds to the refresh-token secret, next to the refresher's own
 * (refresh-state.ts). The refresher keeps annotations it does not know, so these survive refreshes.
 */
export const authorizationAnnotationKeys = {
    /** ISO time of the last authorization. */
    authorizedAt: "b24-authorized-at",
    /** How it arrived: `cli`, `redirect` or `install`. */
    authorizedVia: "b24-authorized-via",
    /** The portal's member_id as Bitrix24's token endpoint named it. Not a secret. */
    memberId: "b24-member-id",
    /**
     * SHA-256 (hex) of the `application_token` of the last ONAPPINSTALL event: later events carry the
     * same token, and comparing hashes verifies them without keeping the token itself readable to
     * anyone who may read secret metadata.
     */
    applicationTokenSha256: "b24-application-token-sha256",
} as const;

export type AuthorizationVia = "cli" | "redirect" | "install";

/** Host names are compared in lower case, without scheme, path, port-less trailing dot or slash. */
export function normalizePortalDomain(value: string): string {
    let v = value.trim().toLowerCase();
    v = v.replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
    v = v.replace(/[/?#].*$/, "");
    return v.replace(/\.$/, "");
}

const hostPattern = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;

export function isPortalDomain(value: string): boolean {
    return hostPattern.test(value);
}

/**
 * The `state` an authorize URL must carry for the `oauthCallback` function to accept its redirect.
 * The function cannot know a random per-run state, so it is derived from what only the stack knows:
 * an HMAC of the client id and portal under the client secret. Whoever has the stack's authorize URL
 * (or the client secret) can start an authorization that the function accepts; anyone else who
 * authorizes the app on the portal (any portal user can) is refused and nothing is stored.
 */
export function callbackState(input: { clientId: string; clientSecret: string; portalDomain: string }): string {
    return createHmac("sha256", input.clientSecret)
        .update(`b24-token-rotation/oauth-callback/v1\n${input.clientId}\n${normalizePortalDomain(input.portalDomain)}`)
        .digest("base64url")
        .slice(0, 32);
}

/** Constant-time comparison of two short strings. */
export function sameSecret(a: string, b: string): boolean {
    const x = Buffer.from(a, "utf8");
    const y = Buffer.from(b, "utf8");
    return x.length === y.length && timingSafeEqual(x, y);
}

export function applicationTokenHash(applicationToken: string): string {
    return createHash("sha256").update(applicationToken, "utf8").digest("hex");
}

/** Whether an event's `application_token` is the one recorded at install time (false when none was recorded). */
export function applicationTokenMatches(annotations: Record<string, string>, applicationToken: string): boolean {
    const recorded = annotations[authorizationAnnotationKeys.applicationTokenSha256];
    return recorded !== undefined && sameSecret(recorded, applicationTokenHash(applicationToken));
}

/** What came back in the browser's redirect (or was pasted), before any exchange. */
export interface RedirectParams {
    code: string;
    state?: string;
    domain?: string;
    memberId?: string;
    scope?: string;
    serverDomain?: string;
}

export type PortalCheckCode =
    | "bad_state" // the redirect's state is not the one this authorization started with
    | "missing_state" // a state is required here and the redirect carried none
    | "wrong_portal" // the redirect (or event) names another portal
    | "wrong_member" // member_id differs between the redirect/event, the token answer or the configuration
    | "unverifiable_portal" // nothing in the answer ties the tokens to the configured portal
    | "no_refresh_token"; // a first authorization must yield a refresh token

export type PortalCheck = { ok: true } | { ok: false; code: PortalCheckCode; expected?: string; received?: string };

export interface ExpectedPortal {
    /** The configured portal host, e.g. `example.bitrix24.com`. */
    portalDomain: string;
    /** The configured member_id, when known. */
    memberId?: string;
}

/**
 * Checks a redirect before its code is spent: the state (when `expectedState` is given; `stateRequired`
 * refuses a redirect without one) and the portal the redirect names.
 */
export function checkRedirect(
    params: RedirectParams,
    expected: ExpectedPortal & { expectedState?: string; stateRequired?: boolean },
): PortalCheck {
    if (expected.expectedState !== undefined) {
        if (params.state === undefined || params.state === "") {
            if (expected.stateRequired) return { ok: false, code: "missing_state" };
        } else if (!sameSecret(params.state, expected.expectedState)) {
            return { ok: false, code: "bad_state" };
        }
    }
    if (params.domain !== undefined && normalizePortalDomain(params.domain) !== normalizePortalDomain(expected.portalDomain)) {
        return { ok: false, code: "wrong_portal", expected: normalizePortalDomain(expected.portalDomain), received: params.domain };
    }
    if (params.memberId !== undefined && expected.memberId !== undefined && params.memberId !== expected.memberId) {
        return { ok: false, code: "wrong_member", expected: expected.memberId, received: params.memberId };
    }
    return { ok: true };
}

/**
 * Checks Bitrix24's token answer against what the redirect or event said and the configuration:
 * - the answer must carry a refresh token;
 * - the answer's member_id must equal the redirect's/event's member_id and the configured one, when given;
 * - when neither the redirect's domain nor a configured member_id vouches for the portal (a bare pasted
 *   code), the answer's `client_endpoint` host must be the configured portal.
 * The answer's `domain` is the OAuth server's own host (oauth.bitrix.info), never the portal: it is not compared.
 */
export function checkIssuedTokens(
    tokens: IssuedTokens,
    context: ExpectedPortal & { redirectDomain?: string; redirectMemberId?: string },
): PortalCheck {
    if (!tokens.refreshToken) return { ok: false, code: "no_refresh_token" };
    const answered = tokens.memberId;
    for (const expectedMember of [context.redirectMemberId, context.memberId]) {
        if (expectedMember !== undefined && answered !== expectedMember) {
            return { ok: false, code: "wrong_member", expected: expectedMember, received: answered ?? "(none)" };
        }
    }
    const vouched = context.redirectDomain !== undefined || context.memberId !== undefined;
    if (!vouched) {
        let host: string | undefined;
        try {
            host = tokens.clientEndpoint ? new URL(tokens.clientEndpoint).host.toLowerCase() : undefined;
        } catch {
            host = undefined;
        }
        if (host !== normalizePortalDomain(context.portalDomain)) {
            return { ok: false, code: "unverifiable_portal", expected: normalizePortalDomain(context.portalDomain), received: host ?? "(none)" };
        }
    }
    return { ok: true };
}

export type LiveTokensDecision =
    | { live: true; accessVersion?: number; refreshVersion: number; secondsLeft: number }
    | { live: false; reason: "none_recorded" | "expired" | "failure_recorded"; failure?: string };

/**
 * Whether the stack already holds a working pair: the refresher (or an earlier authorization) recorded
 * an access-token expiry that is still ahead and no permanent failure since. Re-authorizing then would
 * only start a second token chain, so `npm run authorize` refuses without `--force`.
 */
export function liveTokens(state: RefreshState, nowMs: number): LiveTokensDecision {
    if (state.failure) return { live: false, reason: "failure_recorded", failure: state.failure.code };
    const pair = state.pair;
    if (!pair || pair.accessExpiresAt === undefined) return { live: false, reason: "none_recorded" };
    const secondsLeft = Math.floor((pair.accessExpiresAt - nowMs) / 1000);
    if (secondsLeft <= 0) return { live: false, reason: "expired" };
    return { live: true, accessVersion: pair.accessVersion, refreshVersion: pair.refreshVersion, secondsLeft };
}
