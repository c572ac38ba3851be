/**
 * The response shapes of the real Bitrix24 OAuth server and REST API, as the sandbox sends them.
 *
 * Sources (read through the search tool; quoted where it matters):
 *
 *  [DOC-OAUTH]  bitrix24/b24restdocs settings/oauth/index.md (= apidocs.bitrix24.com/settings/oauth/index.html):
 *               authorize URL `/oauth/authorize/?client_id&state`; redirect carries
 *               `code, state, domain, member_id, scope, server_domain`; code lives 30 s;
 *               `PAYMENT_REQUIRED` answer `{"error":"PAYMENT_REQUIRED","error_description":"Payment required"}`.
 *  [DOC-RENEW]  bitrix24/b24restdocs settings/oauth/auto-renewal.md: refresh_token lives 180 days; "after the
 *               refresh ... both such query and jointly issued access_token become invalid" (training.bitrix24.com
 *               lesson 20134 says the same).
 *  [DOC-OERR]   bitrix24/b24restdocs settings/oauth/error-codes.md: token-server codes invalid_request,
 *               invalid_client, invalid_scope/insufficient_scope, invalid_grant.
 *  [DOC-SYSERR] bitrix24/b24restdocs _includes/system-errors.md: REST system errors
 *               503 QUERY_LIMIT_EXCEEDED "Too many requests", 401 NO_AUTH_FOUND "Wrong authorization data",
 *               401 expired_token "The access token provided has expired".
 *  [DOC-LIMITS] bitrix24/b24restdocs limits.md: leaky bucket, counter +1 per request, -Y per second, blocked
 *               (503 QUERY_LIMIT_EXCEEDED) above X; X=50/Y=2 (Enterprise 250/5). `time` block with
 *               `operating` and `operating_reset_at`.
 *  [DOC-METHODS] b24restdocs api-reference/user/user-current.md, api-reference/common/users/profile.md,
 *               api-reference/common/system/app-info.md: `result` payloads and the `time` block.
 *  [REAL-TOKEN] Real token-endpoint answers: bitrix-tools/b24-rest-docs issue #285 (2026, oauth.bitrix24.tech) and
 *               OpenIntegrations docs (Bitrix24/Refresh-token, oauth.bitrix.info). Key order
 *               access_token, expires, expires_in, scope, domain, server_endpoint, status, client_endpoint,
 *               member_id, user_id, refresh_token; `domain` is the OAuth server's own host ("oauth.bitrix.info"),
 *               NOT the portal; the portal is only in `client_endpoint`; scope "app"; status "L" for a local app;
 *               tokens are 70 lowercase hex chars, e.g. 717e0567 006e9f06 006b12e4 00000001 000007c2ebc8f802...:
 *               the first 8 hex chars are the expiry as a little-endian uint32 (0x67057e71 = 1728413297 = "expires").
 *  [REAL-CODE]  OpenIntegrations docs Bitrix24/Get-token: an expired code answers
 *               {"error":"expired_token","error_description":"The authorization token provided has expired."}.
 *  [BX-OAUTH]   Bitrix "oauth" server module source (Bitrix\OAuth\Base, found by find_string): grantAccessToken /
 *               getClientParameters / getAuthRefreshTokenInfo / getAuthCodeInfo / verifyAccessTokenInternal:
 *                 no grant_type      -> 400 invalid_request "Invalid grant_type parameter or parameter missing"
 *                 unknown grant_type -> 400 unsupported_grant_type
 *                 no refresh_token   -> 400 invalid_request 'No "refresh_token" parameter found'
 *                 no code            -> 400 invalid_request
 *                 unknown token/code -> 400 invalid_grant (no description)
 *                 expired refresh    -> 401 expired_token "The refresh token provided has expired."
 *                 expired code       -> 401 expired_token "The authorization token provided has expired."
 *                 REST, expired      -> 401 expired_token "The access token provided has expired."
 *                 REST, bad token    -> 401 invalid_token "The access token provided is invalid."
 *               JSON errors carry `Content-Type: application/json` and `Cache-Control: no-store`.
 *  [SDK-PHP]    bitrix24/b24phpsdk src/Core/ApiLevelErrorHandler.php (official SDK): token-endpoint HTTP 400 +
 *               invalid_grant => re-authorization; HTTP 401 + invalid_client => wrong credentials; HTTP 200 bodies
 *               with an `error` key (wrong_client, PAYMENT_REQUIRED, ...) are errors too.
 *  [REAL-REDIRECT] yarbshk/pybitrix24 issue #17: a real redirect
 *               `?code=...&state=&domain=xxxx.bitrix24.com.br&member_id=...&scope=crm&server_domain=oauth.bitrix.info`
 *               and a real `{"error":"invalid_grant"}` body without description.
 */

export const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
} as const;

export interface TokenSuccessBody {
  access_token: string;
  expires: number;
  expires_in: number;
  scope: string;
  domain: string;
  server_endpoint: string;
  status: string;
  client_endpoint: string;
  member_id: string;
  user_id: number;
  refresh_token?: string;
}

export interface ErrorBody {
  error: string;
  error_description?: string;
}

export interface TokenSuccessInput {
  accessToken: string;
  refreshToken?: string;
  expires: number;
  expiresIn: number;
  /** host of the OAuth server ([REAL-TOKEN]: "oauth.bitrix.info"; here the sandbox's own host:port) */
  oauthHost: string;
  /** `${sandbox.url}/rest/` */
  restBase: string;
  status: string;
  memberId: string;
  userId: number;
}

/** Success JSON in the real key order [REAL-TOKEN]. `refresh_token` is left out when undefined. */
export function tokenSuccess(input: TokenSuccessInput): TokenSuccessBody {
  const body: TokenSuccessBody = {
    access_token: input.accessToken,
    expires: input.expires,
    expires_in: input.expiresIn,
    scope: 'app',
    domain: input.oauthHost,
    server_endpoint: input.restBase,
    status: input.status,
    client_endpoint: input.restBase,
    member_id: input.memberId,
    user_id: input.userId,
  };
  if (input.refreshToken !== undefined) body.refresh_token = input.refreshToken;
  return body;
}

export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
}

function err(status: number, error: string, description?: string): ErrorAnswer {
  return { status, body: description === undefined ? { error } : { error, error_description: description } };
}

/** Token endpoint errors [BX-OAUTH], [DOC-OERR], [SDK-PHP]. */
export const tokenErrors = {
  missingGrantType: () => err(400, 'invalid_request', 'Invalid grant_type parameter or parameter missing'),
  unsupportedGrantType: () => err(400, 'unsupported_grant_type'),
  missingRefreshToken: () => err(400, 'invalid_request', 'No "refresh_token" parameter found'),
  missingCode: () => err(400, 'invalid_request'),
  /** [SDK-PHP] expects 401 for bad credentials (the on-premise module answers 400; the cloud SDK maps 401). */
  invalidClient: () => err(401, 'invalid_client'),
  /** unknown, already used, or revoked refresh token / code [BX-OAUTH], [REAL-REDIRECT]: no description. */
  invalidGrant: () => err(400, 'invalid_grant'),
  expiredRefreshToken: () => err(401, 'expired_token', 'The refresh token provided has expired.'),
  expiredCode: () => err(401, 'expired_token', 'The authorization token provided has expired.'),
  /** [DOC-OAUTH], [DOC-RENEW]; HTTP 200 as [SDK-PHP] handles it on its 200 path. */
  paymentRequired: () => err(200, 'PAYMENT_REQUIRED', 'Payment required'),
};

/** REST system errors [DOC-SYSERR], [BX-OAUTH]. */
export const restErrors = {
  noAuth: () => err(401, 'NO_AUTH_FOUND', 'Wrong authorization data'),
  expiredToken: () => err(401, 'expired_token', 'The access token provided has expired.'),
  invalidToken: () => err(401, 'invalid_token', 'The access token provided is invalid.'),
  queryLimit: () => err(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests'),
};

/** A typical nginx gateway error page (what a proxy in front of the OAuth server sends). */
export const GATEWAY_502_HTML =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n' +
  '<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', '+00:00');
}

/** The `time` block of every REST answer [DOC-LIMITS], [DOC-METHODS]. */
export function restTime(startMs: number, finishMs: number) {
  return {
    start: startMs / 1000,
    finish: finishMs / 1000,
    duration: (finishMs - startMs) / 1000,
    processing: (finishMs - startMs) / 1000,
    date_start: isoSeconds(startMs),
    date_finish: isoSeconds(finishMs),
    operating_reset_at: Math.floor(startMs / 1000) + 600,
    operating: 0,
  };
}

export interface PortalFacts {
  clientId: string;
  status: string;
  userId: number;
}

/** `result` payloads of the methods the sandbox knows [DOC-METHODS]; others echo their parameters. */
export function restResult(method: string, params: Record<string, unknown>, facts: PortalFacts): unknown {
  switch (method) {
    case 'user.current':
      return {
        ID: String(facts.userId),
        ACTIVE: true,
        NAME: 'Sandbox',
        LAST_NAME: 'Admin',
        EMAIL: 'admin@sandbox.bitrix24.test',
        LAST_LOGIN: '2024-07-23T08:07:26+00:00',
        DATE_REGISTER: '2024-07-22T00:00:00+00:00',
        IS_ONLINE: 'Y',
        LAST_ACTIVITY_DATE: '2024-07-23 08:08:50',
        PERSONAL_GENDER: '',
        PERSONAL_BIRTHDAY: '',
        WORK_POSITION: '',
        UF_EMPLOYMENT_DATE: '',
        UF_DEPARTMENT: [1],
      };
    case 'profile':
      return {
        ID: String(facts.userId),
        ADMIN: true,
        NAME: 'Sandbox',
        LAST_NAME: 'Admin',
        PERSONAL_GENDER: '',
        TIME_ZONE: '',
      };
    case 'app.info':
      return {
        ID: 1,
        CODE: facts.clientId,
        VERSION: 1,
        STATUS: facts.status,
        INSTALLED: true,
        PAYMENT_EXPIRED: 'N',
        DAYS: null,
        LANGUAGE_ID: 'en',
        LICENSE: 'en_project',
        LICENSE_TYPE: 'project',
        LICENSE_FAMILY: 'project',
      };
    default:
      // Not a real method: the sandbox echoes what it received so callers can check their encoding.
      return { method, params };
  }
}
