/**
 * Pure state of the tokens a Bitrix24 OAuth server has issued: no I/O, no clock of its own
 * (every operation takes `nowMs`), token values come from an injected `mint` function.
 *
 * Model (see responses.ts [DOC-RENEW]):
 * - An authorization (authorize() or a code exchange) starts a *chain*. Several chains may be alive at
 *   once ("an unlimited number of such chains can exist ... each initiated by an authorization").
 * - Each chain has exactly one live refresh token and one current access token.
 * - A successful refresh replaces both: the old refresh token and the access token issued with it die at
 *   once (an old access token then reads as `revoked`, which REST reports as expired_token).
 * - A refresh that returns no new refresh token (`keepRefreshToken`) replaces only the access token.
 * - Codes are single use and expire after their TTL.
 */

export type TokenKind = 'access' | 'refresh' | 'code';
export type Mint = (kind: TokenKind, expiresAtSec: number) => string;

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** access token expiry, unix seconds */
  expires: number;
  /** refresh token expiry, unix seconds */
  refreshExpires: number;
  chainId: number;
}

export type AccessState = 'live' | 'expired' | 'revoked' | 'unknown';
export type GrantFailure = 'unknown' | 'used' | 'expired';
export type GrantResult = { ok: true; pair: TokenPair } | { ok: false; reason: GrantFailure };

interface RefreshEntry {
  chainId: number;
  expiresAtSec: number;
  used: boolean;
}
interface AccessEntry {
  chainId: number;
  expiresAtSec: number;
  revoked: boolean;
}
interface CodeEntry {
  expiresAtSec: number;
  used: boolean;
}
interface Chain {
  id: number;
  refreshToken: string;
  accessToken: string;
}

export interface LedgerTtls {
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  codeTtlSeconds: number;
}

const sec = (ms: number) => Math.floor(ms / 1000);

export class TokenLedger {
  private readonly refresh = new Map<string, RefreshEntry>();
  private readonly access = new Map<string, AccessEntry>();
  private readonly codes = new Map<string, CodeEntry>();
  private readonly chains: Chain[] = [];

  constructor(
    private readonly ttls: LedgerTtls,
    private readonly mint: Mint,
  ) {}

  /** Every token and code ever minted, live or dead: tests look for them in logs. */
  issuedValues(): string[] {
    return [...this.refresh.keys(), ...this.access.keys(), ...this.codes.keys()];
  }

  /** A new chain, as if a user authorized the app now. */
  newChain(nowMs: number): TokenPair {
    const chain: Chain = { id: this.chains.length + 1, refreshToken: '', accessToken: '' };
    this.chains.push(chain);
    return this.issue(chain, nowMs, true);
  }

  issueCode(nowMs: number): string {
    const expiresAtSec = sec(nowMs) + this.ttls.codeTtlSeconds;
    const code = this.mint('code', expiresAtSec);
    this.codes.set(code, { expiresAtSec, used: false });
    return code;
  }

  /** authorization_code grant: a valid code is spent and starts a new chain. */
  exchangeCode(code: string, nowMs: number): GrantResult {
    const entry = this.codes.get(code);
    if (!entry) return { ok: false, reason: 'unknown' };
    if (sec(nowMs) >= entry.expiresAtSec) return { ok: false, reason: 'expired' };
    if (entry.used) return { ok: false, reason: 'used' };
    entry.used = true;
    return { ok: true, pair: this.newChain(nowMs) };
  }

  /**
   * Checks a refresh token without changing anything (expiry first, as a signed token's timestamp is
   * checked before any lookup).
   */
  checkRefresh(refreshToken: string, nowMs: number): { ok: true } | { ok: false; reason: GrantFailure } {
    const entry = this.refresh.get(refreshToken);
    if (!entry) return { ok: false, reason: 'unknown' };
    if (sec(nowMs) >= entry.expiresAtSec) return { ok: false, reason: 'expired' };
    if (entry.used) return { ok: false, reason: 'used' };
    return { ok: true };
  }

  /**
   * refresh_token grant. On success the chain's previous access token is revoked; unless
   * `keepRefreshToken`, the refresh token is spent and replaced. With `keepRefreshToken` the returned
   * pair carries the (still live) old refresh token.
   */
  rotate(refreshToken: string, nowMs: number, keepRefreshToken = false): GrantResult {
    const check = this.checkRefresh(refreshToken, nowMs);
    if (!check.ok) return check;
    const entry = this.refresh.get(refreshToken)!;
    const chain = this.chains[entry.chainId - 1]!;
    if (!keepRefreshToken) entry.used = true;
    return { ok: true, pair: this.issue(chain, nowMs, !keepRefreshToken) };
  }

  accessState(accessToken: string, nowMs: number): AccessState {
    const entry = this.access.get(accessToken);
    if (!entry) return 'unknown';
    if (entry.revoked) return 'revoked';
    if (sec(nowMs) >= entry.expiresAtSec) return 'expired';
    return 'live';
  }

  /** The live refresh token of the newest chain, if that chain still has one. */
  liveRefreshToken(nowMs: number): string | undefined {
    const chain = this.chains[this.chains.length - 1];
    if (!chain) return undefined;
    return this.checkRefresh(chain.refreshToken, nowMs).ok ? chain.refreshToken : undefined;
  }

  private issue(chain: Chain, nowMs: number, newRefresh: boolean): TokenPair {
    const now = sec(nowMs);
    const previousAccess = this.access.get(chain.accessToken);
    if (previousAccess) previousAccess.revoked = true;

    const expires = now + this.ttls.accessTtlSeconds;
    const accessToken = this.mint('access', expires);
    this.access.set(accessToken, { chainId: chain.id, expiresAtSec: expires, revoked: false });
    chain.accessToken = accessToken;

    if (newRefresh) {
      const refreshExpires = now + this.ttls.refreshTtlSeconds;
      const refreshToken = this.mint('refresh', refreshExpires);
      this.refresh.set(refreshToken, { chainId: chain.id, expiresAtSec: refreshExpires, used: false });
      chain.refreshToken = refreshToken;
    }
    const refreshExpires = this.refresh.get(chain.refreshToken)!.expiresAtSec;
    return { accessToken, refreshToken: chain.refreshToken, expires, refreshExpires, chainId: chain.id };
  }
}
