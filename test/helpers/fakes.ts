// In-memory ports for the refresh algorithm's unit tests.
import type {
    Clock,
    IssuedTokens,
    Log,
    LogEntry,
    OAuthClient,
    OAuthFailure,
    OAuthResult,
    SecretMeta,
    SecretVersionInfo,
    StoreErrorCode,
    TokenKind,
    TokenStore,
    VersionState,
} from "../../function/core/ports";
import { StoreError } from "../../function/core/ports";

type StoreOperation =
    | "readMeta"
    | "writeMeta"
    | "listEnabledVersions"
    | "readVersion"
    | "addVersion"
    | "destroyVersion"
    | "describeAccessToken";

interface FakeVersion {
    version: number;
    state: VersionState;
    value?: string;
}

export class FakeTokenStore implements TokenStore {
    etag = '"0"';
    annotations: Record<string, string> = {};
    readonly versions: Record<TokenKind, FakeVersion[]> = { refresh: [], access: [] };
    /** Every call in order, e.g. "addVersion:refresh". */
    readonly calls: string[] = [];
    private readonly faults: Array<{ op: StoreOperation; kind?: TokenKind; code: StoreErrorCode; times: number }> = [];
    /** Versions newer than this are hidden from listings (a lagging list). */
    listLag: Partial<Record<TokenKind, number>> = {};
    private etagCounter = 0;

    seed(kind: TokenKind, value: string): number {
        const version = this.versions[kind].length + 1;
        this.versions[kind].push({ version, state: "ENABLED", value });
        return version;
    }

    fail(op: StoreOperation, code: StoreErrorCode = "unavailable", times = 1, kind?: TokenKind): void {
        this.faults.push({ op, kind, code, times });
    }

    /** Another writer changed the annotations behind our back. */
    bumpEtag(): void {
        this.etag = `"x${++this.etagCounter}"`;
    }

    enabled(kind: TokenKind): number[] {
        return this.versions[kind].filter((v) => v.state === "ENABLED").map((v) => v.version);
    }

    latestValue(kind: TokenKind): string | undefined {
        return [...this.versions[kind]].reverse().find((v) => v.state === "ENABLED")?.value;
    }

    private enter(op: StoreOperation, kind?: TokenKind): void {
        this.calls.push(kind ? `${op}:${kind}` : op);
        const fault = this.faults.find((f) => f.op === op && (f.kind === undefined || f.kind === kind) && f.times > 0);
        if (fault) {
            fault.times -= 1;
            throw new StoreError(fault.code, op, `${fault.code.toUpperCase()} injected`);
        }
    }

    async readMeta(): Promise<SecretMeta> {
        this.enter("readMeta");
        return { etag: this.etag, annotations: { ...this.annotations } };
    }

    async writeMeta(etag: string, annotations: Record<string, string>): Promise<string | null> {
        this.enter("writeMeta");
        if (etag !== this.etag) return null;
        this.annotations = { ...annotations };
        this.etag = `"${++this.etagCounter}"`;
        return this.etag;
    }

    async listEnabledVersions(kind: TokenKind): Promise<SecretVersionInfo[]> {
        this.enter("listEnabledVersions", kind);
        const lag = this.listLag[kind];
        return this.versions[kind]
            .filter((v) => v.state === "ENABLED" && (lag === undefined || v.version <= lag))
            .map((v) => ({ version: v.version, state: v.state }))
            .reverse();
    }

    async readVersion(kind: TokenKind, version: number): Promise<string> {
        this.enter("readVersion", kind);
        const v = this.versions[kind].find((x) => x.version === version);
        if (!v) throw new StoreError("not_found", "readVersion", `no ${kind} version ${version}`);
        if (v.state !== "ENABLED" || v.value === undefined) throw new StoreError("failed_precondition", "readVersion", `${kind} version ${version} is ${v.state}`);
        return v.value;
    }

    async addVersion(kind: TokenKind, value: string): Promise<number> {
        this.enter("addVersion", kind);
        return this.seed(kind, value);
    }

    /** What describeAccessToken published on the access-token secret. */
    accessInfo?: { version: number; expiresAtMs: number };

    async describeAccessToken(version: number, expiresAtMs: number): Promise<void> {
        this.enter("describeAccessToken");
        this.accessInfo = { version, expiresAtMs };
    }

    async destroyVersion(kind: TokenKind, version: number): Promise<void> {
        this.enter("destroyVersion", kind);
        const v = this.versions[kind].find((x) => x.version === version);
        if (!v) throw new StoreError("not_found", "destroyVersion", `no ${kind} version ${version}`);
        v.state = "DESTROYED";
        delete v.value;
    }
}

/** A Bitrix24 token endpoint with single-use refresh tokens and scripted failures. */
export class FakeOAuth implements OAuthClient {
    live: string;
    readonly received: string[] = [];
    private readonly queued: Array<OAuthFailure | "no_refresh_token"> = [];
    private counter = 0;

    constructor(
        private readonly clock: Clock,
        initialRefreshToken: string,
    ) {
        this.live = initialRefreshToken;
    }

    failNext(failure: OAuthFailure | "no_refresh_token"): void {
        this.queued.push(failure);
    }

    /** Values this endpoint issued, for the no-secret check. */
    readonly issued: string[] = [];

    async refresh(refreshToken: string): Promise<OAuthResult> {
        this.received.push(refreshToken);
        const next = this.queued.shift();
        if (next && next !== "no_refresh_token") return { ok: false, failure: next };
        if (refreshToken !== this.live) {
            return { ok: false, failure: { code: "invalid_grant", permanent: true, sent: true, status: 400, detail: "invalid_grant" } };
        }
        const n = ++this.counter;
        const tokens: IssuedTokens = {
            accessToken: `access-token-${n}-${"a".repeat(40)}`,
            expiresAt: Math.floor(this.clock.now() / 1000) + 3600,
        };
        if (next !== "no_refresh_token") {
            tokens.refreshToken = `refresh-token-${n}-${"r".repeat(40)}`;
            this.live = tokens.refreshToken;
        }
        this.issued.push(tokens.accessToken, tokens.refreshToken ?? "");
        return { ok: true, tokens };
    }
}

export class FakeClock implements Clock {
    constructor(public ms = Date.UTC(2026, 11, 4, 12, 0, 0)) {}
    now(): number {
        return this.ms;
    }
    advance(seconds: number): void {
        this.ms += seconds * 1000;
    }
}

export class CapturedLog implements Log {
    readonly entries: LogEntry[] = [];
    write(entry: LogEntry): void {
        this.entries.push(entry);
    }
    lines(): string[] {
        return this.entries.map((e) => JSON.stringify(e));
    }
    bySeverity(severity: LogEntry["severity"]): LogEntry[] {
        return this.entries.filter((e) => e.severity === severity);
    }
    byEvent(event: LogEntry["event"]): LogEntry[] {
        return this.entries.filter((e) => e.event === event);
    }
    clear(): void {
        this.entries.length = 0;
    }
}
