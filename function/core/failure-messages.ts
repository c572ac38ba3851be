// Every failure that needs a human, mapped in one place to what happened and what fixes it.

export type PermanentFailureCode =
    | "invalid_grant"
    | "expired_token"
    | "invalid_client"
    | "payment_required"
    | "not_authorized"
    | "refresh_token_lost"
    | "store_misconfigured"
    | "missing_config";

const whatHappened: Record<PermanentFailureCode, string> = {
    invalid_grant:
        "Bitrix24 no longer accepts the stored refresh token (invalid_grant: it was used elsewhere, expired, or the app was reinstalled)",
    expired_token: "the stored refresh token has expired (expired_token: it was not used for 180 days)",
    invalid_client:
        "Bitrix24 rejected the application's client id or secret (invalid_client): the app was deleted or its secret was changed",
    payment_required: "the portal's plan no longer allows this application (PAYMENT_REQUIRED)",
    not_authorized: "no refresh token is stored yet: the application has not been authorized",
    refresh_token_lost:
        "Bitrix24 issued a new refresh token but Secret Manager did not accept it after every retry, and the old one is already used up",
    store_misconfigured: "Secret Manager refused access to the token secrets (a secret is missing or the runtime account lacks its role)",
    missing_config: "the function's configuration is incomplete",
};

const whatFixesIt: Record<PermanentFailureCode, "reauthorize" | "credentials" | "billing" | "deploy"> = {
    invalid_grant: "reauthorize",
    expired_token: "reauthorize",
    invalid_client: "credentials",
    payment_required: "billing",
    not_authorized: "reauthorize",
    refresh_token_lost: "reauthorize",
    store_misconfigured: "deploy",
    missing_config: "deploy",
};

export interface FixHints {
    /** How to store a new token pair, e.g. "run `npm run authorize -- --project my-proj`". */
    reauthorize: string;
}

export function permanentFailureMessage(code: PermanentFailureCode, hints: FixHints): string {
    const fix = {
        reauthorize: `Re-authorization is needed: ${hints.reauthorize}. Refreshing resumes by itself once a new refresh token is stored.`,
        credentials:
            "Fix the credentials: `pulumi config set clientId <id>`, `pulumi config set --secret clientSecret <secret>`, `pulumi up`; " +
            `then, if the app was reinstalled, re-authorize: ${hints.reauthorize}.`,
        billing: `Renew the portal's subscription or the app's plan in Bitrix24, then re-authorize: ${hints.reauthorize}.`,
        deploy: "Run `pulumi up` to restore the secrets, roles and environment the stack defines.",
    }[whatFixesIt[code]];
    return `Bitrix24 token refresh needs attention: ${whatHappened[code]}. ${fix}`;
}
