import got, { type Response } from 'got';
import { afterEach, describe, expect, it } from 'vitest';
import { startBitrix24Sandbox, type Bitrix24Sandbox, type SandboxOptions } from '../../local/bitrix24-sandbox/sandbox';

const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
const DAY = 24 * 3600 * 1000;
const TOKEN_RE = /^[0-9a-f]{70}$/;

let sandbox: Bitrix24Sandbox | undefined;
let clock = T0;

async function start(options: SandboxOptions = {}): Promise<Bitrix24Sandbox> {
  clock = T0;
  sandbox = await startBitrix24Sandbox({ now: () => clock, ...options });
  return sandbox;
}

afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

const client = got.extend({ throwHttpErrors: false, retry: { limit: 0 }, followRedirect: false });

function refresh(b24: Bitrix24Sandbox, refreshToken: string, extra: Record<string, string> = {}, signal?: AbortSignal) {
  return client.post(b24.tokenUrl, {
    form: {
      grant_type: 'refresh_token',
      client_id: b24.clientId,
      client_secret: b24.clientSecret,
      refresh_token: refreshToken,
      ...extra,
    },
    ...(signal ? { signal } : {}),
  });
}

/** A client that gives up as soon as the sandbox has received its call (no timing guesses). */
async function refreshAndGiveUp(b24: Bitrix24Sandbox, refreshToken: string): Promise<void> {
  const calls = b24.tokenCalls.length;
  const controller = new AbortController();
  const pending = refresh(b24, refreshToken, {}, controller.signal);
  pending.catch(() => {});
  while (b24.tokenCalls.length === calls) await sleep(5);
  controller.abort();
  await expect(pending).rejects.toThrow();
}

function exchange(b24: Bitrix24Sandbox, code: string) {
  return client.post(b24.tokenUrl, {
    form: { grant_type: 'authorization_code', client_id: b24.clientId, client_secret: b24.clientSecret, code },
  });
}

function rest(b24: Bitrix24Sandbox, method: string, auth?: string) {
  return client.post(`${b24.url}/rest/${method}.json`, { form: auth ? { auth } : {} });
}

const json = (res: Response<string>) => JSON.parse(res.body) as Record<string, unknown>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('token endpoint', () => {
  it('answers a refresh with the real success shape, key order included', async () => {
    const b24 = await start();
    const first = b24.authorize();

    const res = await refresh(b24, first.refreshToken);

    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = json(res);
    expect(Object.keys(body)).toEqual([
      'access_token', 'expires', 'expires_in', 'scope', 'domain', 'server_endpoint',
      'status', 'client_endpoint', 'member_id', 'user_id', 'refresh_token',
    ]);
    const expires = Math.floor(T0 / 1000) + 3600;
    expect(body).toMatchObject({
      expires,
      expires_in: 3600,
      scope: 'app',
      domain: new URL(b24.url).host,
      server_endpoint: `${b24.url}/rest/`,
      status: 'L',
      client_endpoint: `${b24.url}/rest/`,
      member_id: b24.memberId,
      user_id: 1,
    });
    expect(body.access_token).toMatch(TOKEN_RE);
    expect(body.refresh_token).toMatch(TOKEN_RE);
    // the first 8 hex chars are the expiry, little-endian, like the real tokens
    expect(Buffer.from(String(body.access_token).slice(0, 8), 'hex').readUInt32LE()).toBe(expires);
    expect(body.access_token).not.toBe(first.accessToken);
    expect(b24.liveRefreshToken()).toBe(body.refresh_token);
    expect(b24.isLiveAccessToken(String(body.access_token))).toBe(true);
    expect(b24.refreshCount()).toBe(1);
    expect(b24.tokenCalls).toEqual([
      { grantType: 'refresh_token', outcome: 'ok', at: T0, consumed: true, delivered: true, status: 200 },
    ]);
  });

  it('makes refresh tokens single use: the old refresh and the old access token die at once', async () => {
    const b24 = await start();
    const first = b24.authorize();
    const second = json(await refresh(b24, first.refreshToken));

    const again = await refresh(b24, first.refreshToken);
    expect(again.statusCode).toBe(400);
    expect(json(again)).toEqual({ error: 'invalid_grant' });
    expect(b24.isLiveAccessToken(first.accessToken)).toBe(false);

    const oldRest = await rest(b24, 'profile', first.accessToken);
    expect(oldRest.statusCode).toBe(401);
    expect(json(oldRest)).toEqual({ error: 'expired_token', error_description: 'The access token provided has expired.' });
    expect((await rest(b24, 'profile', String(second.access_token))).statusCode).toBe(200);
    expect(b24.refreshCount()).toBe(1);
    expect(b24.tokenCalls.map((c) => c.outcome)).toEqual(['ok', 'invalid_grant']);
  });

  it('accepts the parameters in a GET query too', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    const query = new URLSearchParams({
      grant_type: 'refresh_token', client_id: b24.clientId, client_secret: b24.clientSecret, refresh_token: refreshToken,
    });
    const res = await client.get(`${b24.tokenUrl}?${query}`);
    expect(res.statusCode).toBe(200);
    expect(json(res).refresh_token).toBe(b24.liveRefreshToken());
  });

  it('expires access tokens after accessTtlSeconds and refresh tokens after refreshTtlSeconds', async () => {
    const b24 = await start();
    const { accessToken, refreshToken } = b24.authorize();

    clock = T0 + 3600 * 1000;
    expect(b24.isLiveAccessToken(accessToken)).toBe(false);
    expect(json(await rest(b24, 'profile', accessToken)).error).toBe('expired_token');

    clock = T0 + 180 * DAY;
    expect(b24.liveRefreshToken()).toBeUndefined();
    const res = await refresh(b24, refreshToken);
    expect(res.statusCode).toBe(401);
    expect(json(res)).toEqual({ error: 'expired_token', error_description: 'The refresh token provided has expired.' });
    expect(b24.tokenCalls[0]?.outcome).toBe('expired_token');
  });

  it('exchanges a code once, within codeTtlSeconds', async () => {
    const b24 = await start();
    const code = b24.issueCode();
    expect(code).toMatch(TOKEN_RE);

    const res = await exchange(b24, code);
    expect(res.statusCode).toBe(200);
    const body = json(res);
    expect(body.refresh_token).toBe(b24.liveRefreshToken());
    expect(b24.isLiveAccessToken(String(body.access_token))).toBe(true);

    const reused = await exchange(b24, code);
    expect(reused.statusCode).toBe(400);
    expect(json(reused)).toEqual({ error: 'invalid_grant' });

    const late = b24.issueCode();
    clock += 30_000;
    const expired = await exchange(b24, late);
    expect(expired.statusCode).toBe(401);
    expect(json(expired)).toEqual({ error: 'expired_token', error_description: 'The authorization token provided has expired.' });
    expect(json(await exchange(b24, 'f'.repeat(70)))).toEqual({ error: 'invalid_grant' });
    expect(b24.tokenCalls.map((c) => [c.grantType, c.outcome])).toEqual([
      ['authorization_code', 'ok'],
      ['authorization_code', 'invalid_grant'],
      ['authorization_code', 'expired_token'],
      ['authorization_code', 'invalid_grant'],
    ]);
  });

  it('rejects a wrong client with 401 invalid_client and missing parameters with 400', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();

    const wrong = await refresh(b24, refreshToken, { client_secret: 'nope' });
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)).toEqual({ error: 'invalid_client' });
    expect(b24.liveRefreshToken()).toBe(refreshToken);

    const noToken = await refresh(b24, '');
    expect(noToken.statusCode).toBe(400);
    expect(json(noToken)).toEqual({ error: 'invalid_request', error_description: 'No "refresh_token" parameter found' });

    const noGrant = await client.post(b24.tokenUrl, { form: { client_id: b24.clientId } });
    expect(noGrant.statusCode).toBe(400);
    expect(json(noGrant)).toEqual({
      error: 'invalid_request',
      error_description: 'Invalid grant_type parameter or parameter missing',
    });

    const noCode = await client.post(b24.tokenUrl, {
      form: { grant_type: 'authorization_code', client_id: b24.clientId, client_secret: b24.clientSecret },
    });
    expect(json(noCode)).toEqual({ error: 'invalid_request' });

    const password = await client.post(b24.tokenUrl, { form: { grant_type: 'password' } });
    expect(json(password)).toEqual({ error: 'unsupported_grant_type' });
    expect(b24.tokenCalls.map((c) => c.outcome)).toEqual([
      'invalid_client', 'bad_request', 'bad_request', 'bad_request', 'bad_request',
    ]);
  });
});

describe('faults', () => {
  it('answers the replacing faults in their shapes without consuming the refresh token', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    b24.failNext({ kind: 'error200', error: 'wrong_client', description: 'Wrong client' });
    b24.failNext({ kind: 'invalid_grant400' });
    b24.failNext({ kind: 'invalid_client401' });
    b24.failNext({ kind: 'payment_required' });
    b24.failNext({ kind: 'html502' });
    b24.failNext({ kind: 'malformed' });

    const e200 = await refresh(b24, refreshToken);
    expect([e200.statusCode, json(e200)]).toEqual([200, { error: 'wrong_client', error_description: 'Wrong client' }]);
    const e400 = await refresh(b24, refreshToken);
    expect([e400.statusCode, json(e400)]).toEqual([400, { error: 'invalid_grant' }]);
    const e401 = await refresh(b24, refreshToken);
    expect([e401.statusCode, json(e401)]).toEqual([401, { error: 'invalid_client' }]);
    const payment = await refresh(b24, refreshToken);
    expect([payment.statusCode, json(payment)]).toEqual([200, { error: 'PAYMENT_REQUIRED', error_description: 'Payment required' }]);
    const html = await refresh(b24, refreshToken);
    expect(html.statusCode).toBe(502);
    expect(html.headers['content-type']).toBe('text/html');
    expect(html.body).toContain('<h1>502 Bad Gateway</h1>');
    const malformed = await refresh(b24, refreshToken);
    expect(malformed.statusCode).toBe(200);
    expect(malformed.headers['content-type']).toMatch(/^application\/json/);
    expect(malformed.body.startsWith('{"access_token":"')).toBe(true);
    expect(() => JSON.parse(malformed.body)).toThrow();

    expect(b24.liveRefreshToken()).toBe(refreshToken);
    expect(b24.tokenCalls.map((c) => [c.fault, c.outcome, c.consumed, c.status])).toEqual([
      ['error200', 'fault', false, 200],
      ['invalid_grant400', 'fault', false, 400],
      ['invalid_client401', 'fault', false, 401],
      ['payment_required', 'fault', false, 200],
      ['html502', 'fault', false, 502],
      ['malformed', 'fault', false, 200],
    ]);
    expect((await refresh(b24, refreshToken)).statusCode).toBe(200);
    expect(b24.refreshCount()).toBe(1);
  });

  it('failNext(fault, times) queues the fault that many times', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    b24.failNext({ kind: 'html502' }, 2);
    expect((await refresh(b24, refreshToken)).statusCode).toBe(502);
    expect((await refresh(b24, refreshToken)).statusCode).toBe(502);
    expect((await refresh(b24, refreshToken)).statusCode).toBe(200);
  });

  it('malformed with consume spends the refresh token and cuts the real answer short', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    b24.failNext({ kind: 'malformed', consume: true });
    const res = await refresh(b24, refreshToken);
    expect(() => JSON.parse(res.body)).toThrow();
    expect(b24.liveRefreshToken()).not.toBe(refreshToken);
    expect(b24.tokenCalls[0]).toMatchObject({ fault: 'malformed', outcome: 'ok', consumed: true });
    expect(json(await refresh(b24, refreshToken))).toEqual({ error: 'invalid_grant' });
  });

  it('no_refresh_token issues a new access token and leaves the old refresh token live', async () => {
    const b24 = await start();
    const first = b24.authorize();
    b24.failNext({ kind: 'no_refresh_token' });

    const res = await refresh(b24, first.refreshToken);
    expect(res.statusCode).toBe(200);
    const body = json(res);
    expect(body).not.toHaveProperty('refresh_token');
    expect(b24.isLiveAccessToken(String(body.access_token))).toBe(true);
    expect(b24.isLiveAccessToken(first.accessToken)).toBe(false);
    expect(b24.liveRefreshToken()).toBe(first.refreshToken);
    expect(b24.tokenCalls[0]).toMatchObject({ fault: 'no_refresh_token', outcome: 'ok', consumed: false });

    const next = json(await refresh(b24, first.refreshToken));
    expect(next.refresh_token).toMatch(TOKEN_RE);
    expect(b24.isLiveAccessToken(String(body.access_token))).toBe(false);
  });

  it('slow + consume: the refresh happens at once, a client that gave up loses the new pair', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    b24.failNext({ kind: 'slow', delayMs: 300, consume: true });

    await refreshAndGiveUp(b24, refreshToken);
    expect(b24.liveRefreshToken()).not.toBe(refreshToken);
    expect(b24.refreshCount()).toBe(1);
    await sleep(400);
    expect(b24.tokenCalls[0]).toMatchObject({ fault: 'slow', outcome: 'ok', consumed: true, delivered: false });
    expect(json(await refresh(b24, refreshToken))).toEqual({ error: 'invalid_grant' });
  });

  it('slow without consume: nothing happens if the client gave up; a patient client gets the answer', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    b24.failNext({ kind: 'slow', delayMs: 300, consume: false });
    await refreshAndGiveUp(b24, refreshToken);
    await sleep(400);
    expect(b24.liveRefreshToken()).toBe(refreshToken);
    expect(b24.tokenCalls[0]).toMatchObject({ outcome: 'fault', consumed: false, delivered: false });

    b24.failNext({ kind: 'slow', delayMs: 80, consume: false });
    const startedAt = Date.now();
    const res = await refresh(b24, refreshToken);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(70);
    expect(res.statusCode).toBe(200);
    expect(json(res).refresh_token).toBe(b24.liveRefreshToken());
    expect(b24.tokenCalls[1]).toMatchObject({ fault: 'slow', outcome: 'ok', consumed: true, delivered: true });
  });

  it('reset destroys the connection; consume decides whether the refresh happened', async () => {
    const b24 = await start();
    const { refreshToken } = b24.authorize();
    b24.failNext({ kind: 'reset', consume: false });
    await expect(refresh(b24, refreshToken)).rejects.toThrow();
    expect(b24.liveRefreshToken()).toBe(refreshToken);

    b24.failNext({ kind: 'reset', consume: true });
    await expect(refresh(b24, refreshToken)).rejects.toThrow();
    expect(b24.liveRefreshToken()).not.toBe(refreshToken);
    expect(b24.tokenCalls.map((c) => [c.outcome, c.consumed, c.delivered])).toEqual([
      ['fault', false, false],
      ['ok', true, false],
    ]);
  });
});

describe('REST', () => {
  it('answers known methods with result and time, by auth parameter, Bearer header or JSON body', async () => {
    const b24 = await start();
    const { accessToken } = b24.authorize();

    const current = await rest(b24, 'user.current', accessToken);
    expect(current.statusCode).toBe(200);
    const body = json(current);
    expect(body.result).toMatchObject({ ID: '1', ACTIVE: true });
    expect(body.time).toMatchObject({ start: T0 / 1000, date_start: '2025-01-15T12:00:00+00:00', operating: 0 });

    const info = await client.get(`${b24.url}/rest/app.info`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(json(info).result).toMatchObject({ CODE: b24.clientId, STATUS: 'L', INSTALLED: true, PAYMENT_EXPIRED: 'N' });

    const profile = await client.get(`${b24.url}/rest/profile.json?auth=${accessToken}`);
    expect(json(profile).result).toEqual({
      ID: '1', ADMIN: true, NAME: 'Sandbox', LAST_NAME: 'Admin', PERSONAL_GENDER: '', TIME_ZONE: '',
    });

    const echo = await client.post(`${b24.url}/rest/crm.deal.add`, {
      json: { auth: accessToken, fields: { TITLE: 'Deal' } },
    });
    expect(json(echo).result).toEqual({ method: 'crm.deal.add', params: { fields: { TITLE: 'Deal' } } });

    expect(b24.restCalls.map((c) => [c.method, c.status])).toEqual([
      ['user.current', 200], ['app.info', 200], ['profile', 200], ['crm.deal.add', 200],
    ]);
  });

  it('answers NO_AUTH_FOUND without a token and invalid_token for an unknown one', async () => {
    const b24 = await start();
    const none = await rest(b24, 'profile');
    expect(none.statusCode).toBe(401);
    expect(json(none)).toEqual({ error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' });

    const unknown = await rest(b24, 'profile', 'a'.repeat(70));
    expect(unknown.statusCode).toBe(401);
    expect(json(unknown)).toEqual({ error: 'invalid_token', error_description: 'The access token provided is invalid.' });
    expect(b24.restCalls.map((c) => c.error)).toEqual(['NO_AUTH_FOUND', 'invalid_token']);
  });

  it('answers 503 QUERY_LIMIT_EXCEEDED above restRateLimitPerSecond', async () => {
    const b24 = await start({ restRateLimitPerSecond: 2 });
    const { accessToken } = b24.authorize();
    expect((await rest(b24, 'profile', accessToken)).statusCode).toBe(200);
    expect((await rest(b24, 'profile', accessToken)).statusCode).toBe(200);
    const limited = await rest(b24, 'profile', accessToken);
    expect(limited.statusCode).toBe(503);
    expect(json(limited)).toEqual({ error: 'QUERY_LIMIT_EXCEEDED', error_description: 'Too many requests' });

    clock += 500;
    expect((await rest(b24, 'profile', accessToken)).statusCode).toBe(200);
    expect((await rest(b24, 'profile', accessToken)).statusCode).toBe(503);
    clock += 1000;
    expect((await rest(b24, 'profile', accessToken)).statusCode).toBe(200);
    expect(b24.restCalls.map((c) => c.status)).toEqual([200, 200, 503, 200, 503, 200]);
  });
});

describe('authorize redirect', () => {
  it('redirects to redirectUri with the parameters of the real redirect, and the code works', async () => {
    const b24 = await start({ redirectUri: 'https://app.example.test/callback?x=1' });
    const res = await client.get(`${b24.url}/oauth/authorize/?client_id=${b24.clientId}&state=s-123`);
    expect(res.statusCode).toBe(302);
    const location = new URL(String(res.headers.location));
    expect(`${location.origin}${location.pathname}`).toBe('https://app.example.test/callback');
    expect([...location.searchParams.keys()]).toEqual([
      'x', 'code', 'state', 'domain', 'member_id', 'scope', 'server_domain',
    ]);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      state: 's-123',
      domain: b24.portalDomain,
      member_id: b24.memberId,
      server_domain: new URL(b24.url).host,
    });
    const exchanged = await exchange(b24, location.searchParams.get('code')!);
    expect(exchanged.statusCode).toBe(200);
  });

  it('answers 400 for a wrong client or when no redirectUri is configured', async () => {
    const withUri = await start({ redirectUri: 'https://app.example.test/cb' });
    expect((await client.get(`${withUri.url}/oauth/authorize/?client_id=other`)).statusCode).toBe(400);
    await withUri.stop();

    const without = await start();
    expect((await client.get(`${without.url}/oauth/authorize/?client_id=${without.clientId}`)).statusCode).toBe(400);
  });
});
