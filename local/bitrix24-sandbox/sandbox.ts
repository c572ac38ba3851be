/**
 * A Bitrix24 OAuth server + portal REST stand-in on loopback (plain node:http), for tests and `npm start`.
 *
 *   const b24 = await startBitrix24Sandbox();
 *   // B24_OAUTH_TOKEN_URL = b24.tokenUrl, B24_CLIENT_ID = b24.clientId, B24_CLIENT_SECRET = b24.clientSecret
 *   const { refreshToken } = b24.authorize();       // as if a user installed/authorized the app
 *
 * Endpoints (shapes and their sources: responses.ts):
 *   /oauth/token/       GET query or POST application/x-www-form-urlencoded (query and body are merged,
 *                       body wins). grant_type=refresh_token | authorization_code.
 *   /oauth/authorize/   ?client_id&state -> 302 to `redirectUri` with code,state,domain,member_id,scope,server_domain.
 *   /rest/{method}[.json]  GET or POST (form or JSON), `auth` parameter or `Authorization: Bearer`.
 *
 * Where the real servers differ from one another, the sandbox keeps them apart too:
 *   - the token answer's `domain` / `server_domain` is the OAuth server's own host (real: "oauth.bitrix.info");
 *     here `127.0.0.1:PORT`. The portal the app is installed on is `portalDomain`; it appears only in the
 *     authorize redirect's `domain`. `client_endpoint` (the portal's REST base) is `${url}/rest/` so REST calls
 *     land on this sandbox.
 *
 * Faults (`failNext`) apply to the next calls of /oauth/token/, one per call, whatever the call is.
 * A fault either *replaces* the answer (the grant is not processed, nothing is consumed, outcome 'fault'),
 * or *wraps* normal processing (the grant is processed as usual; the TokenCall then carries the grant's own
 * outcome plus `fault`):
 *   error200, invalid_grant400, invalid_client401, payment_required, html502 ... replace.
 *   malformed           replace by default: HTTP 200 JSON content-type, the body a success JSON cut short
 *                       (its tokens are not live). With `consume: true` it wraps: the grant is processed
 *                       (a refresh token is spent, the new pair is live) and its answer is cut short.
 *   no_refresh_token    wraps: a refresh_token grant issues a new access token (the old access token dies)
 *                       but the answer has no refresh_token and the presented refresh token stays live.
 *                       For authorization_code the chain is created as usual; the answer omits refresh_token.
 *   slow {delayMs, consume}
 *                       consume=true: the grant is processed at once; its answer is written after delayMs if the
 *                         client is still connected (a client that gave up has lost the new pair).
 *                       consume=false: after delayMs, if the client is still connected, the grant is processed and
 *                         answered; if the client went away first, nothing is processed (outcome 'fault').
 *   reset {consume}     the socket is destroyed without an answer; consume=true processes the grant first.
 *
 * Logs nothing unless `log` is given; never logs a token, code or secret.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  GATEWAY_502_HTML,
  JSON_HEADERS,
  restErrors,
  restResult,
  restTime,
  tokenErrors,
  tokenSuccess,
  type ErrorAnswer,
} from './responses';
import { TokenLedger, type TokenKind, type TokenPair } from './token-ledger';

export interface SandboxOptions {
  port?: number;
  clientId?: string;
  clientSecret?: string;
  /** the portal the app is installed on (the authorize redirect's `domain`) */
  portalDomain?: string;
  memberId?: string;
  accessTtlSeconds?: number;
  refreshTtlSeconds?: number;
  codeTtlSeconds?: number;
  /** clock in ms; default Date.now */
  now?: () => number;
  /**
   * REST leaky bucket ([DOC-LIMITS]): the counter drains by this many requests per second; a request that
   * would push it above `restRateLimitBurst` answers 503 QUERY_LIMIT_EXCEEDED. Unset = no limit.
   */
  restRateLimitPerSecond?: number;
  /** the bucket size X (real: 50, Enterprise 250); default = restRateLimitPerSecond */
  restRateLimitBurst?: number;
  /** where /oauth/authorize/ redirects; unset = it answers 400 */
  redirectUri?: string;
  /** optional line logger (no secrets are ever passed to it) */
  log?: (line: string) => void;
}

export type SandboxFault =
  | { kind: 'error200'; error: string; description?: string }
  | { kind: 'invalid_grant400' }
  | { kind: 'invalid_client401' }
  | { kind: 'payment_required' }
  | { kind: 'html502' }
  | { kind: 'malformed'; consume?: boolean }
  | { kind: 'no_refresh_token' }
  | { kind: 'slow'; delayMs: number; consume: boolean }
  | { kind: 'reset'; consume: boolean };

export type TokenCallOutcome = 'ok' | 'fault' | 'invalid_grant' | 'invalid_client' | 'bad_request' | 'expired_token';

export interface TokenCall {
  grantType: string;
  /** the grant's own result when it was processed; 'fault' when a fault kept it from being processed */
  outcome: TokenCallOutcome;
  /** when the call arrived (options.now) */
  at: number;
  /** the fault kind applied to this call */
  fault?: string;
  /** whether the presented refresh token (or code) was spent */
  consumed: boolean;
  /** whether an HTTP answer was written (false for reset, or slow when the client left first) */
  delivered: boolean;
  /** HTTP status written, when delivered */
  status?: number;
}

export interface RestCall {
  method: string;
  at: number;
  status: number;
  error?: string;
}

export interface Bitrix24Sandbox {
  url: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  portalDomain: string;
  memberId: string;
  authorize(): { accessToken: string; refreshToken: string; expires: number };
  issueCode(): string;
  liveRefreshToken(): string | undefined;
  isLiveAccessToken(token: string): boolean;
  failNext(fault: SandboxFault, times?: number): void;
  /** every /oauth/token/ call, recorded on arrival and completed when decided */
  tokenCalls: TokenCall[];
  /** refresh_token grants the server processed successfully (whether or not the answer reached the client) */
  refreshCount(): number;
  /** Every token and code the sandbox ever issued (tests check that none reached a log). */
  issuedTokens(): string[];
  /** every /rest/ call */
  restCalls: RestCall[];
  stop(): Promise<void>;
}

const DEFAULTS = {
  clientId: 'local.sandbox0000000000.00000000',
  clientSecret: 'SandboxDemoSecretNotARealOneXXXXXXXXXXXXXXXXXXXXXX',
  portalDomain: 'sandbox.bitrix24.test',
  memberId: '5a6e64626f785f6d656d6265725f6964',
  accessTtlSeconds: 3600,
  refreshTtlSeconds: 180 * 24 * 3600,
  codeTtlSeconds: 30,
};
/** scopes the portal grants, as listed in the authorize redirect (the token answer always says "app") */
const PORTAL_SCOPE = 'crm,user';
const USER_ID = 1;
const MAX_BODY_BYTES = 1 << 20;

/**
 * 70 lowercase hex chars shaped like the real ones [REAL-TOKEN]: expiry (LE uint32) | 16 hex portal/app
 * part | user id (8 hex) | "000007" | 32 random hex.
 */
function tokenMinter(memberId: string): (kind: TokenKind, expiresAtSec: number) => string {
  const portalPart = (memberId.toLowerCase().replace(/[^0-9a-f]/g, '') + '0'.repeat(16)).slice(0, 16);
  const userPart = USER_ID.toString(16).padStart(8, '0');
  return (_kind, expiresAtSec) => {
    const le = Buffer.alloc(4);
    le.writeUInt32LE(expiresAtSec >>> 0);
    return le.toString('hex') + portalPart + userPart + '000007' + randomBytes(16).toString('hex');
  };
}

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function contentType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

interface Decision {
  status: number;
  body: unknown;
  outcome: TokenCallOutcome;
  consumed: boolean;
}

export async function startBitrix24Sandbox(options: SandboxOptions = {}): Promise<Bitrix24Sandbox> {
  const clientId = options.clientId ?? DEFAULTS.clientId;
  const clientSecret = options.clientSecret ?? DEFAULTS.clientSecret;
  const portalDomain = options.portalDomain ?? DEFAULTS.portalDomain;
  const memberId = options.memberId ?? DEFAULTS.memberId;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const appStatus = clientId.startsWith('local.') ? 'L' : 'P';
  const ttls = {
    accessTtlSeconds: options.accessTtlSeconds ?? DEFAULTS.accessTtlSeconds,
    refreshTtlSeconds: options.refreshTtlSeconds ?? DEFAULTS.refreshTtlSeconds,
    codeTtlSeconds: options.codeTtlSeconds ?? DEFAULTS.codeTtlSeconds,
  };
  const mint = tokenMinter(memberId);
  const ledger = new TokenLedger(ttls, mint);
  const faults: SandboxFault[] = [];
  const tokenCalls: TokenCall[] = [];
  const restCalls: RestCall[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const rate = options.restRateLimitPerSecond;
  const burst = options.restRateLimitBurst ?? rate ?? 0;
  let bucketLevel = 0;
  let bucketAt = now();

  let url = '';
  let oauthHost = '';

  function admitRest(): boolean {
    if (rate === undefined) return true;
    const t = now();
    bucketLevel = Math.max(0, bucketLevel - (Math.max(0, t - bucketAt) / 1000) * rate);
    bucketAt = t;
    if (bucketLevel + 1 > burst) return false;
    bucketLevel += 1;
    return true;
  }

  function success(pair: TokenPair, withRefresh: boolean): unknown {
    return tokenSuccess({
      accessToken: pair.accessToken,
      refreshToken: withRefresh ? pair.refreshToken : undefined,
      expires: pair.expires,
      expiresIn: ttls.accessTtlSeconds,
      oauthHost,
      restBase: `${url}/rest/`,
      status: appStatus,
      memberId,
      userId: USER_ID,
    });
  }

  const fail = (answer: ErrorAnswer, outcome: TokenCallOutcome): Decision => ({
    status: answer.status,
    body: answer.body,
    outcome,
    consumed: false,
  });

  /** The real grant logic, in the order of [BX-OAUTH] getClientParameters. */
  function grant(p: URLSearchParams, keepRefreshToken = false): Decision {
    const grantType = p.get('grant_type');
    if (!grantType) return fail(tokenErrors.missingGrantType(), 'bad_request');
    if (grantType !== 'refresh_token' && grantType !== 'authorization_code') {
      return fail(tokenErrors.unsupportedGrantType(), 'bad_request');
    }
    if (p.get('client_id') !== clientId || p.get('client_secret') !== clientSecret) {
      return fail(tokenErrors.invalidClient(), 'invalid_client');
    }
    if (grantType === 'refresh_token') {
      const refreshToken = p.get('refresh_token');
      if (!refreshToken) return fail(tokenErrors.missingRefreshToken(), 'bad_request');
      const r = ledger.rotate(refreshToken, now(), keepRefreshToken);
      if (!r.ok) {
        return r.reason === 'expired'
          ? fail(tokenErrors.expiredRefreshToken(), 'expired_token')
          : fail(tokenErrors.invalidGrant(), 'invalid_grant');
      }
      return { status: 200, body: success(r.pair, !keepRefreshToken), outcome: 'ok', consumed: !keepRefreshToken };
    }
    const code = p.get('code');
    if (!code) return fail(tokenErrors.missingCode(), 'bad_request');
    const r = ledger.exchangeCode(code, now());
    if (!r.ok) {
      return r.reason === 'expired'
        ? fail(tokenErrors.expiredCode(), 'expired_token')
        : fail(tokenErrors.invalidGrant(), 'invalid_grant');
    }
    return { status: 200, body: success(r.pair, !keepRefreshToken), outcome: 'ok', consumed: true };
  }

  function sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  async function handleToken(req: IncomingMessage, res: ServerResponse, reqUrl: URL): Promise<void> {
    const params = new URLSearchParams(reqUrl.searchParams);
    if (req.method === 'POST') {
      const body = await readBody(req);
      if (contentType(req) === 'application/x-www-form-urlencoded') {
        for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
      }
    } else if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return;
    }

    const fault = faults.shift();
    const call: TokenCall = {
      grantType: params.get('grant_type') ?? '',
      outcome: 'fault',
      at: now(),
      consumed: false,
      delivered: false,
      ...(fault ? { fault: fault.kind } : {}),
    };
    tokenCalls.push(call);

    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) clientGone = true;
    });
    const record = (d: Pick<Decision, 'outcome' | 'consumed'>) => {
      call.outcome = d.outcome;
      call.consumed = d.consumed;
    };
    const deliver = (status: number, write: () => void) => {
      if (clientGone || res.destroyed) return;
      write();
      call.delivered = true;
      call.status = status;
      log(`token ${call.grantType || '-'} -> ${status}${fault ? ` (fault ${fault.kind})` : ''}`);
    };
    const deliverJson = (status: number, body: unknown) => deliver(status, () => sendJson(res, status, body));
    const answer = (d: Decision) => {
      record(d);
      deliverJson(d.status, d.body);
    };

    if (!fault) return answer(grant(params));

    switch (fault.kind) {
      case 'error200': {
        const body = fault.description === undefined
          ? { error: fault.error }
          : { error: fault.error, error_description: fault.description };
        return deliverJson(200, body);
      }
      case 'invalid_grant400': {
        const e = tokenErrors.invalidGrant();
        return deliverJson(e.status, e.body);
      }
      case 'invalid_client401': {
        const e = tokenErrors.invalidClient();
        return deliverJson(e.status, e.body);
      }
      case 'payment_required': {
        const e = tokenErrors.paymentRequired();
        return deliverJson(e.status, e.body);
      }
      case 'html502':
        return deliver(502, () => {
          res.writeHead(502, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(GATEWAY_502_HTML) });
          res.end(GATEWAY_502_HTML);
        });
      case 'malformed': {
        let body: unknown;
        if (fault.consume) {
          const d = grant(params);
          record(d);
          body = d.body;
        } else {
          const t = Math.floor(now() / 1000);
          const fake: TokenPair = {
            accessToken: mint('access', t + ttls.accessTtlSeconds),
            refreshToken: mint('refresh', t + ttls.refreshTtlSeconds),
            expires: t + ttls.accessTtlSeconds,
            refreshExpires: t + ttls.refreshTtlSeconds,
            chainId: 0,
          };
          body = success(fake, true);
        }
        const full = JSON.stringify(body);
        const cut = full.slice(0, Math.max(1, Math.floor(full.length * 0.4)));
        return deliver(200, () => {
          res.writeHead(200, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(cut) });
          res.end(cut);
        });
      }
      case 'no_refresh_token':
        return answer(grant(params, true));
      case 'slow': {
        if (fault.consume) {
          const d = grant(params);
          record(d);
          after(fault.delayMs, () => deliverJson(d.status, d.body));
        } else {
          after(fault.delayMs, () => {
            if (clientGone || res.destroyed) return; // never processed: outcome stays 'fault'
            answer(grant(params));
          });
        }
        return;
      }
      case 'reset':
        if (fault.consume) record(grant(params));
        log(`token ${call.grantType || '-'} -> reset (fault reset)`);
        req.socket.destroy();
        return;
    }
  }

  function handleAuthorize(req: IncomingMessage, res: ServerResponse, reqUrl: URL): void {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (reqUrl.searchParams.get('client_id') !== clientId) {
      sendJson(res, 400, { error: 'invalid_client' });
      return;
    }
    if (!options.redirectUri) {
      sendJson(res, 400, {
        error: 'invalid_request',
        error_description: 'The sandbox has no redirectUri; use issueCode() instead',
      });
      return;
    }
    const target = new URL(options.redirectUri);
    // parameter order as in [DOC-OAUTH] / [REAL-REDIRECT]
    target.searchParams.append('code', ledger.issueCode(now()));
    target.searchParams.append('state', reqUrl.searchParams.get('state') ?? '');
    target.searchParams.append('domain', portalDomain);
    target.searchParams.append('member_id', memberId);
    target.searchParams.append('scope', PORTAL_SCOPE);
    target.searchParams.append('server_domain', oauthHost);
    log('authorize -> 302');
    res.writeHead(302, { location: target.toString(), 'content-length': 0 }).end();
  }

  async function handleRest(req: IncomingMessage, res: ServerResponse, reqUrl: URL, method: string) {
    const started = now();
    const params: Record<string, unknown> = Object.fromEntries(reqUrl.searchParams);
    if (req.method === 'POST') {
      const body = await readBody(req);
      const type = contentType(req);
      if (type === 'application/json' && body.trim() !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          parsed = undefined;
        }
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(params, parsed);
      } else if (type === 'application/x-www-form-urlencoded') {
        Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
      }
    } else if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return;
    }

    const finish = (status: number, body: unknown, error?: string) => {
      restCalls.push({ method, at: started, status, ...(error ? { error } : {}) });
      log(`rest ${method} -> ${status}${error ? ` ${error}` : ''}`);
      sendJson(res, status, body);
    };
    const failWith = (e: ErrorAnswer) => finish(e.status, e.body, e.body.error);

    if (!admitRest()) return failWith(restErrors.queryLimit());

    let token = typeof params.auth === 'string' && params.auth !== '' ? params.auth : undefined;
    const authHeader = req.headers.authorization;
    if (!token && authHeader && /^bearer\s+/i.test(authHeader)) token = authHeader.replace(/^bearer\s+/i, '').trim();
    delete params.auth;
    if (!token) return failWith(restErrors.noAuth());

    switch (ledger.accessState(token, now())) {
      case 'live':
        return finish(200, {
          result: restResult(method, params, { clientId, status: appStatus, userId: USER_ID }),
          time: restTime(started, now()),
        });
      case 'expired':
      case 'revoked':
        return failWith(restErrors.expiredToken());
      case 'unknown':
        return failWith(restErrors.invalidToken());
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reqUrl = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = reqUrl.pathname;
    if (path === '/oauth/token/' || path === '/oauth/token') return handleToken(req, res, reqUrl);
    if (path === '/oauth/authorize/' || path === '/oauth/authorize') return handleAuthorize(req, res, reqUrl);
    const rest = /^\/rest\/([A-Za-z0-9_.]+?)(?:\.json)?\/?$/.exec(path);
    if (rest) return handleRest(req, res, reqUrl, rest[1]!.toLowerCase());
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (e instanceof BodyTooLarge) {
        res.writeHead(413, { connection: 'close' }).end();
        return;
      }
      sendJson(res, 500, { error: 'INTERNAL_SERVER_ERROR', error_description: 'Internal server error' });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  url = `http://127.0.0.1:${port}`;
  oauthHost = `127.0.0.1:${port}`;

  return {
    url,
    tokenUrl: `${url}/oauth/token/`,
    clientId,
    clientSecret,
    portalDomain,
    memberId,
    authorize() {
      const pair = ledger.newChain(now());
      return { accessToken: pair.accessToken, refreshToken: pair.refreshToken, expires: pair.expires };
    },
    issueCode: () => ledger.issueCode(now()),
    liveRefreshToken: () => ledger.liveRefreshToken(now()),
    isLiveAccessToken: (token: string) => ledger.accessState(token, now()) === 'live',
    failNext(fault: SandboxFault, times = 1) {
      for (let i = 0; i < times; i++) faults.push(fault);
    },
    tokenCalls,
    issuedTokens: () => ledger.issuedValues(),
    refreshCount: () => tokenCalls.filter((c) => c.grantType === 'refresh_token' && c.outcome === 'ok').length,
    restCalls,
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
