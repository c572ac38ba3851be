// Every failure `npm run authorize` can end with, mapped in one place to what happened, what was
// (not) stored, and what fixes it. Messages name secrets and versions, never their values.
import type { PortalCheck } from "../function/core/authorization";
import type { OAuthFailure, StoreError } from "../function/core/ports";
import type { AuthorizeOptions } from "./options";

export function storeProblem(error: StoreError, options: AuthorizeOptions, what: string, stored: string): string {
    const where = options.emulatorHost
        ? `the Secret Manager emulator at ${options.emulatorHost} (SECRET_MANAGER_EMULATOR_HOST)`
        : `Secret Manager in project ${options.projectId}`;
    // gax appends every retried attempt's error; the first clause says what happened.
    const first = error.message.split(" : Previous errors")[0]!.replace(/\s+/g, " ").trim();
    const detail = `${error.operation}: ${first.length > 160 ? `${first.slice(0, 157)}…` : first}`;
    switch (error.code) {
        case "unavailable":
            return `Cannot reach ${where} while ${what} (${detail}). ${stored} Check the network (or that the emulator runs) and run again.`;
        case "not_found":
            return (
                `${where} has no such secret or version while ${what} (${detail}). ${stored} ` +
                "Run `pulumi up` for this stack first (it creates the secrets and stores the client id and secret), " +
                "or point --prefix / --*-secret at the names your stack uses."
            );
        case "permission_denied":
            return (
                `${where} refused access while ${what} (${detail}). ${stored} ` +
                "Sign in with `gcloud auth application-default login` as an account that may read the secrets, add versions and " +
                "update the token secrets (e.g. Secret Manager Admin on the project)."
            );
        case "failed_precondition":
            return `${where} refused while ${what}: a version is disabled or destroyed (${detail}). ${stored} Enable or add a version, then run again.`;
        case "invalid":
            return `${where} rejected a request while ${what} (${detail}). ${stored}`;
    }
}

export function oauthProblem(failure: OAuthFailure, options: AuthorizeOptions): string {
    const nothing = "Nothing was stored.";
    switch (failure.code) {
        case "expired_token":
            return (
                "Bitrix24 says the authorization code has expired (expired_token): a code is valid for only 30 seconds. " +
                `${nothing} Run \`npm run authorize\` again and finish the paste right after the redirect` +
                (options.loopback ? "." : ", or register a http://localhost:PORT/… redirect address and pass --redirect-uri so this command catches the code itself.")
            );
        case "invalid_grant":
            return (
                "Bitrix24 rejected the authorization code (invalid_grant): it was already used, or it was issued for another application. " +
                `${nothing} Run \`npm run authorize\` again.`
            );
        case "invalid_client":
            return (
                "Bitrix24 rejected the application's client id or secret (invalid_client). " +
                `${nothing} Compare the app card's "Application ID (client_id)" and "Application key (client_secret)" with ` +
                `${options.clientId ? "--client-id/B24_CLIENT_ID" : `the secret ${options.secrets.clientId}`} and ` +
                `${options.clientSecret ? "--client-secret/B24_CLIENT_SECRET" : `the secret ${options.secrets.clientSecret}`}; fix them with ` +
                "`pulumi config set clientId …`, `pulumi config set --secret clientSecret …` and `pulumi up`, then run again."
            );
        case "payment_required":
            return `The portal's plan does not allow this application (PAYMENT_REQUIRED). ${nothing} Renew the subscription, then run again.`;
        case "timeout":
        case "network":
            return (
                `Bitrix24's token endpoint ${options.tokenUrl} could not be reached (${failure.code}${failure.detail ? `: ${failure.detail}` : ""}). ` +
                `${nothing} ${failure.sent ? "The code may be spent; " : ""}Run \`npm run authorize\` again.`
            );
        default:
            return (
                `Bitrix24's token endpoint answered ${failure.code}${failure.status !== undefined ? ` (HTTP ${failure.status})` : ""}` +
                `${failure.detail ? `: ${failure.detail}` : ""}. ${nothing} Run \`npm run authorize\` again; if it persists, check --token-url ` +
                "(some portals use https://oauth.bitrix24.tech/oauth/token/)."
            );
    }
}

export function portalProblem(check: Exclude<PortalCheck, { ok: true }>, options: AuthorizeOptions, spent: boolean): string {
    const nothing = spent ? "Nothing was stored." : "Nothing was stored and the code was not used.";
    switch (check.code) {
        case "bad_state":
            return (
                "The redirect's state does not match the one this run put in the authorize address: it belongs to another " +
                `authorization (an older tab, or someone else's link). ${nothing} Open the address printed by this run.`
            );
        case "missing_state":
            return `The redirect carries no state, but this run's authorize address had one. ${nothing} Open the address printed by this run.`;
        case "wrong_portal":
            return (
                `The redirect came from portal ${check.received}, but --portal is ${options.portalDomain}. ${nothing} ` +
                `Sign in to ${options.portalDomain} in the browser (or pass the right --portal) and run again.`
            );
        case "wrong_member":
            return (
                `Bitrix24's answer names member_id ${check.received}, but ${options.memberId === check.expected ? "--member-id" : "the redirect"} ` +
                `named ${check.expected}: the tokens are not for the portal you authorized. ${nothing}`
            );
        case "unverifiable_portal":
            return (
                `Bitrix24's answer names the REST address of ${check.received}, not ${options.portalDomain}, and a bare code carries nothing else ` +
                `that ties it to the portal. ${nothing} Paste the whole redirect address instead of the code, or pass --member-id.`
            );
        case "no_refresh_token":
            return `Bitrix24 answered without a refresh token, so there is nothing the refresher could keep alive. ${nothing}`;
    }
}
