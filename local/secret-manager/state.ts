// The emulated Secret Manager: pure in-memory state with the service's rules, no gRPC.
// Every method mirrors one RPC, takes plain values and either returns a plain view
// or throws an ApiError carrying the status code the real service would answer.

import { crc32c } from './crc32c';
import { ApiError, Code } from './errors';
import { compileFilter, type FilterField, type FilterSubject } from './filter';
import { ALIAS_RE, SECRET_ID_RE, parseProjectName, parseSecretName, parseVersionName, versionName, type VersionRef } from './names';

export type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED';

export interface Cmek {
  kmsKeyName: string;
}
export type Replication =
  | { automatic: { customerManagedEncryption?: Cmek } }
  | { userManaged: { replicas: Array<{ location: string; customerManagedEncryption?: Cmek }> } };

export interface SecretInit {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  versionAliases?: Record<string, number>;
  replication?: Replication;
}

export interface SecretPatch {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  versionAliases?: Record<string, number>;
  /** Compare-and-set guard: when non-empty it must equal the stored etag. */
  etag?: string;
}

export interface SecretView {
  name: string;
  createTimeMs: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  versionAliases: Record<string, number>;
  replication?: Replication;
  etag: string;
}

export interface VersionView {
  name: string;
  createTimeMs: number;
  destroyTimeMs?: number;
  state: VersionState;
  etag: string;
  clientSpecifiedPayloadChecksum: boolean;
  replication?: Replication;
}

export interface AccessView {
  /** Always the numbered name, also when `latest` or an alias was asked for. */
  name: string;
  data: Buffer;
  crc32c: number;
}

export interface ListOptions {
  pageSize?: number;
  pageToken?: string;
  filter?: string;
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
  /** Number of matching items, but 0 when a filter was given (as the API documents). */
  totalSize: number;
}

export interface Inspection {
  annotations: Record<string, string>;
  etag: string;
  versions: Array<{ number: number; state: VersionState; payload?: string }>;
}

/** On-disk form (see persistence.ts); stable and human-readable. */
export interface StateSnapshot {
  format: 'secret-manager-emulator/1';
  etagClock: number;
  seq: number;
  secrets: Array<{
    name: string;
    seq: number;
    createTime: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    versionAliases: Record<string, number>;
    replication?: Replication;
    etag: string;
    versions: Array<{
      number: number;
      state: VersionState;
      createTime: string;
      destroyTime?: string;
      etag: string;
      payloadBase64?: string;
      crc32c?: number;
      clientSpecifiedPayloadChecksum: boolean;
    }>;
  }>;
}

interface VersionRecord {
  number: number;
  createTimeMs: number;
  destroyTimeMs?: number;
  state: VersionState;
  etag: string;
  payload?: Buffer;
  crc32c?: number;
  clientSpecifiedPayloadChecksum: boolean;
}

interface SecretRecord {
  name: string;
  seq: number;
  createTimeMs: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  versionAliases: Record<string, number>;
  replication?: Replication;
  etag: string;
  /** Ascending by number; numbers are 1..n and never reused (versions are never removed). */
  versions: VersionRecord[];
}

export const MAX_PAYLOAD_BYTES = 65536;
const MAX_PAGE_SIZE = 25000;
const MAX_ANNOTATIONS_BYTES = 16 * 1024;
const MAX_LABELS = 64;
const LABEL_KEY_RE = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE_RE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;
const ANNOTATION_KEY_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

const UPDATABLE_PATHS = new Set(['labels', 'annotations', 'version_aliases']);
const IMMUTABLE_PATHS = new Set(['name', 'replication', 'create_time', 'etag', 'secret_type', 'tags', 'policy_member']);
const UNSUPPORTED_PATHS = new Set([
  'topics',
  'rotation',
  'expire_time',
  'ttl',
  'version_destroy_ttl',
  'customer_managed_encryption',
]);

const SECRET_FILTER_FIELDS: readonly FilterField[] = ['name', 'create_time', 'labels', 'replication'];
const VERSION_FILTER_FIELDS: readonly FilterField[] = ['name', 'state', 'create_time'];

function invalid(message: string): ApiError {
  return new ApiError(Code.INVALID_ARGUMENT, message);
}

function validateLabels(labels: Record<string, string>): void {
  const keys = Object.keys(labels);
  if (keys.length > MAX_LABELS) throw invalid(`A secret may have at most ${MAX_LABELS} labels.`);
  for (const k of keys) {
    if (!LABEL_KEY_RE.test(k)) throw invalid(`Invalid label key [${k}].`);
    if (!LABEL_VALUE_RE.test(labels[k]!)) throw invalid(`Invalid value for label [${k}].`);
  }
}

function validateAnnotations(annotations: Record<string, string>): void {
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) {
    if (!ANNOTATION_KEY_RE.test(k)) throw invalid(`Invalid annotation key [${k}].`);
    size += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (size >= MAX_ANNOTATIONS_BYTES) throw invalid('The total size of annotation keys and values must be less than 16KiB.');
}

function validateReplication(r: Replication | undefined): void {
  if (!r) throw invalid('Field [secret.replication] is required.');
  if ('userManaged' in r) {
    if (r.userManaged.replicas.length === 0) throw invalid('Field [secret.replication.user_managed.replicas] must not be empty.');
    for (const replica of r.userManaged.replicas) {
      if (!replica.location) throw invalid('Field [secret.replication.user_managed.replicas.location] is required.');
    }
  }
}

function replicationKind(r: Replication | undefined): 'automatic' | 'user_managed' | undefined {
  if (!r) return undefined;
  return 'automatic' in r ? 'automatic' : 'user_managed';
}

function encodePageToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

function decodePageToken(token: string): number {
  const m = /^offset:(\d+)$/.exec(Buffer.from(token, 'base64url').toString());
  if (!m) throw invalid(`Invalid page token [${token}].`);
  return Number(m[1]);
}

function paginate<T>(all: T[], options: ListOptions, filtered: boolean): Page<T> {
  const pageSize = options.pageSize ?? 0;
  if (!Number.isInteger(pageSize) || pageSize < 0) throw invalid('Field [page_size] must not be negative.');
  const size = pageSize === 0 || pageSize > MAX_PAGE_SIZE ? MAX_PAGE_SIZE : pageSize;
  const offset = options.pageToken ? decodePageToken(options.pageToken) : 0;
  const items = all.slice(offset, offset + size);
  const next = offset + size < all.length ? encodePageToken(offset + size) : '';
  return { items, nextPageToken: next, totalSize: filtered ? 0 : all.length };
}

function copyReplication(r: Replication | undefined): Replication | undefined {
  return r === undefined ? undefined : (JSON.parse(JSON.stringify(r)) as Replication);
}

export class SecretStore {
  private readonly secrets = new Map<string, SecretRecord>();
  private readonly staleLag = new Map<string, number>();
  private readonly now: () => Date;
  private etagClock = 0;
  private seq = 0;
  private mutationCount = 0;

  constructor(options: { now?: () => Date; snapshot?: StateSnapshot } = {}) {
    this.now = options.now ?? (() => new Date());
    if (options.snapshot) this.restore(options.snapshot);
  }

  /** Increases with every state change; the emulator persists when it moved. */
  get mutations(): number {
    return this.mutationCount;
  }

  // ---- secrets ---------------------------------------------------------------------------

  createSecret(parent: string, secretId: string, init: SecretInit): SecretView {
    parseProjectName(parent);
    if (!secretId) throw invalid('Field [secret_id] is required.');
    if (!SECRET_ID_RE.test(secretId)) throw invalid(`Invalid secret id [${secretId}].`);
    const labels = { ...(init.labels ?? {}) };
    const annotations = { ...(init.annotations ?? {}) };
    validateLabels(labels);
    validateAnnotations(annotations);
    validateReplication(init.replication);
    if (init.versionAliases && Object.keys(init.versionAliases).length > 0) {
      throw invalid('Version aliases can only refer to existing versions; a new secret has none.');
    }
    const name = `${parent}/secrets/${secretId}`;
    if (this.secrets.has(name)) throw new ApiError(Code.ALREADY_EXISTS, `Secret [${name}] already exists.`);
    const record: SecretRecord = {
      name,
      seq: ++this.seq,
      createTimeMs: this.now().getTime(),
      labels,
      annotations,
      versionAliases: {},
      replication: copyReplication(init.replication),
      etag: this.nextEtag(),
      versions: [],
    };
    this.secrets.set(name, record);
    this.mutated();
    return this.secretView(record);
  }

  getSecret(name: string): SecretView {
    return this.secretView(this.findSecret(parseSecretName(name)));
  }

  listSecrets(parent: string, options: ListOptions = {}): Page<SecretView> {
    parseProjectName(parent);
    const filter = options.filter ?? '';
    const matches = compileFilter(filter, SECRET_FILTER_FIELDS);
    const prefix = `${parent}/secrets/`;
    const all = [...this.secrets.values()]
      .filter((s) => s.name.startsWith(prefix))
      .sort((a, b) => b.seq - a.seq)
      .filter((s) => matches(this.secretSubject(s)));
    const page = paginate(all, options, filter.trim() !== '');
    return { ...page, items: page.items.map((s) => this.secretView(s)) };
  }

  /** Applies the fields named by `updateMask` (snake_case proto paths, as on the wire). */
  updateSecret(patch: SecretPatch, updateMask: readonly string[]): SecretView {
    const name = parseSecretName(patch.name, 'secret.name');
    if (updateMask.length === 0) throw invalid('Field [update_mask] is required.');
    for (const path of updateMask) {
      if (UPDATABLE_PATHS.has(path)) continue;
      if (IMMUTABLE_PATHS.has(path)) throw invalid(`Field [secret.${path}] cannot be updated.`);
      if (UNSUPPORTED_PATHS.has(path)) {
        throw new ApiError(Code.UNIMPLEMENTED, `Updating [secret.${path}] is not supported by this emulator.`);
      }
      throw invalid(`Invalid update_mask path [${path}].`);
    }
    const record = this.findSecret(name);
    this.checkEtag(patch.etag, record.etag, `Secret [${name}]`);
    const paths = new Set(updateMask);
    const labels = paths.has('labels') ? { ...(patch.labels ?? {}) } : record.labels;
    const annotations = paths.has('annotations') ? { ...(patch.annotations ?? {}) } : record.annotations;
    const aliases = paths.has('version_aliases') ? { ...(patch.versionAliases ?? {}) } : record.versionAliases;
    validateLabels(labels);
    validateAnnotations(annotations);
    for (const [alias, n] of Object.entries(aliases)) {
      if (!ALIAS_RE.test(alias) || alias === 'latest' || alias === 'NEW') throw invalid(`Invalid version alias [${alias}].`);
      if (!record.versions[n - 1]) throw invalid(`Version alias [${alias}] refers to a version that does not exist [${n}].`);
    }
    record.labels = labels;
    record.annotations = annotations;
    record.versionAliases = aliases;
    record.etag = this.nextEtag();
    this.mutated();
    return this.secretView(record);
  }

  deleteSecret(name: string, etag?: string): void {
    const record = this.findSecret(parseSecretName(name));
    this.checkEtag(etag, record.etag, `Secret [${record.name}]`);
    this.secrets.delete(record.name);
    this.staleLag.delete(record.name);
    this.mutated();
  }

  // ---- versions ------------------------------------------------------------------------

  /** `dataCrc32c`: the checksum the client sent, if it sent one. */
  addSecretVersion(parent: string, data: Buffer | undefined, dataCrc32c?: number): VersionView {
    const record = this.findSecret(parseSecretName(parent, 'parent'));
    if (data === undefined) throw invalid('Field [payload] is required.');
    if (data.length > MAX_PAYLOAD_BYTES) {
      throw invalid(`Secret payload data length must be less than or equal to ${MAX_PAYLOAD_BYTES} bytes, got ${data.length}.`);
    }
    const checksum = crc32c(data);
    if (dataCrc32c !== undefined && dataCrc32c !== checksum) {
      throw invalid('Checksum mismatch: the payload data_crc32c does not match the data received.');
    }
    const version: VersionRecord = {
      number: record.versions.length + 1,
      createTimeMs: this.now().getTime(),
      state: 'ENABLED',
      etag: this.nextEtag(),
      payload: Buffer.from(data),
      crc32c: checksum,
      clientSpecifiedPayloadChecksum: dataCrc32c !== undefined,
    };
    record.versions.push(version);
    this.mutated();
    return this.versionView(record, version);
  }

  getSecretVersion(name: string): VersionView {
    const { secret, version } = this.resolve(name, true);
    return this.versionView(secret, version);
  }

  accessSecretVersion(name: string): AccessView {
    const { secret, version } = this.resolve(name, true);
    const numbered = versionName(secret.name, version.number);
    if (version.state !== 'ENABLED' || !version.payload) {
      throw new ApiError(Code.FAILED_PRECONDITION, `Secret Version [${numbered}] is in ${version.state} state.`);
    }
    return { name: numbered, data: Buffer.from(version.payload), crc32c: version.crc32c ?? crc32c(version.payload) };
  }

  /** Newest first, as the API documents. */
  listSecretVersions(parent: string, options: ListOptions = {}): Page<VersionView> {
    const record = this.findSecret(parseSecretName(parent, 'parent'));
    const filter = options.filter ?? '';
    const matches = compileFilter(filter, VERSION_FILTER_FIELDS);
    const all = [...record.versions]
      .reverse()
      .filter((v) =>
        matches({
          id: String(v.number),
          fullName: versionName(record.name, v.number),
          createTimeMs: v.createTimeMs,
          state: v.state,
        }),
      );
    const page = paginate(all, options, filter.trim() !== '');
    return { ...page, items: page.items.map((v) => this.versionView(record, v)) };
  }

  enableSecretVersion(name: string, etag?: string): VersionView {
    return this.changeState(name, etag, 'ENABLED');
  }

  disableSecretVersion(name: string, etag?: string): VersionView {
    return this.changeState(name, etag, 'DISABLED');
  }

  destroySecretVersion(name: string, etag?: string): VersionView {
    return this.changeState(name, etag, 'DESTROYED');
  }

  // ---- test hooks ----------------------------------------------------------------------

  /**
   * Eventual consistency of `latest`: with lag n, `versions/latest` resolves to the version
   * created n additions before the newest (NOT_FOUND if there was none yet). 0 turns it off.
   */
  staleLatest(secretName: string, lagVersions: number): void {
    if (!Number.isInteger(lagVersions) || lagVersions < 0) throw new RangeError('lagVersions must be a non-negative integer');
    if (lagVersions === 0) this.staleLag.delete(secretName);
    else this.staleLag.set(secretName, lagVersions);
  }

  inspect(secretName: string): Inspection | undefined {
    const record = this.secrets.get(secretName);
    if (!record) return undefined;
    return {
      annotations: { ...record.annotations },
      etag: record.etag,
      versions: record.versions.map((v) => ({
        number: v.number,
        state: v.state,
        ...(v.payload ? { payload: v.payload.toString('utf8') } : {}),
      })),
    };
  }

  // ---- persistence ---------------------------------------------------------------------

  snapshot(): StateSnapshot {
    const iso = (ms: number): string => new Date(ms).toISOString();
    return {
      format: 'secret-manager-emulator/1',
      etagClock: this.etagClock,
      seq: this.seq,
      secrets: [...this.secrets.values()].map((s) => ({
        name: s.name,
        seq: s.seq,
        createTime: iso(s.createTimeMs),
        labels: { ...s.labels },
        annotations: { ...s.annotations },
        versionAliases: { ...s.versionAliases },
        ...(s.replication ? { replication: copyReplication(s.replication) } : {}),
        etag: s.etag,
        versions: s.versions.map((v) => ({
          number: v.number,
          state: v.state,
          createTime: iso(v.createTimeMs),
          ...(v.destroyTimeMs !== undefined ? { destroyTime: iso(v.destroyTimeMs) } : {}),
          etag: v.etag,
          ...(v.payload ? { payloadBase64: v.payload.toString('base64') } : {}),
          ...(v.crc32c !== undefined ? { crc32c: v.crc32c } : {}),
          clientSpecifiedPayloadChecksum: v.clientSpecifiedPayloadChecksum,
        })),
      })),
    };
  }

  private restore(snapshot: StateSnapshot): void {
    if (snapshot.format !== 'secret-manager-emulator/1') {
      throw new Error(`unknown state format ${JSON.stringify(snapshot.format)}`);
    }
    this.etagClock = snapshot.etagClock;
    this.seq = snapshot.seq;
    for (const s of snapshot.secrets) {
      parseSecretName(s.name);
      this.secrets.set(s.name, {
        name: s.name,
        seq: s.seq,
        createTimeMs: Date.parse(s.createTime),
        labels: { ...s.labels },
        annotations: { ...s.annotations },
        versionAliases: { ...s.versionAliases },
        replication: copyReplication(s.replication),
        etag: s.etag,
        versions: s.versions.map((v, i) => {
          if (v.number !== i + 1) throw new Error(`secret ${s.name}: versions must be numbered 1..n in order`);
          return {
            number: v.number,
            state: v.state,
            createTimeMs: Date.parse(v.createTime),
            ...(v.destroyTime !== undefined ? { destroyTimeMs: Date.parse(v.destroyTime) } : {}),
            etag: v.etag,
            ...(v.payloadBase64 !== undefined ? { payload: Buffer.from(v.payloadBase64, 'base64') } : {}),
            ...(v.crc32c !== undefined ? { crc32c: v.crc32c } : {}),
            clientSpecifiedPayloadChecksum: v.clientSpecifiedPayloadChecksum,
          };
        }),
      });
    }
  }

  // ---- internals -----------------------------------------------------------------------

  private mutated(): void {
    this.mutationCount++;
  }

  /** Quoted hex of a strictly increasing microsecond clock, like the service's etags. */
  private nextEtag(): string {
    this.etagClock = Math.max(this.now().getTime() * 1000, this.etagClock + 1);
    return `"${this.etagClock.toString(16)}"`;
  }

  private checkEtag(given: string | undefined, current: string, what: string): void {
    if (given && given !== current) {
      throw new ApiError(Code.FAILED_PRECONDITION, `The etag provided in the request does not match the current etag of ${what}.`);
    }
  }

  private findSecret(name: string): SecretRecord {
    const record = this.secrets.get(name);
    if (!record) throw new ApiError(Code.NOT_FOUND, `Secret [${name}] not found.`);
    return record;
  }

  private resolve(name: string, allowAliases: boolean): { secret: SecretRecord; version: VersionRecord } {
    const { secret: secretName, ref } = parseVersionName(name);
    const secret = this.findSecret(secretName);
    if (!allowAliases && ref.kind !== 'number') {
      throw invalid(`State changes need a version number, not [${name}].`);
    }
    const n = this.versionNumber(secret, ref, name);
    const version = secret.versions[n - 1];
    if (!version) throw new ApiError(Code.NOT_FOUND, `Secret Version [${versionName(secretName, n)}] not found.`);
    return { secret, version };
  }

  private versionNumber(secret: SecretRecord, ref: VersionRef, name: string): number {
    switch (ref.kind) {
      case 'number':
        return ref.number;
      case 'alias': {
        const n = Object.prototype.hasOwnProperty.call(secret.versionAliases, ref.alias)
          ? secret.versionAliases[ref.alias]
          : undefined;
        if (n === undefined) throw new ApiError(Code.NOT_FOUND, `Secret Version [${name}] not found.`);
        return n;
      }
      case 'latest': {
        // The most recently created version, whatever its state: no fallback.
        const n = secret.versions.length - (this.staleLag.get(secret.name) ?? 0);
        if (n < 1) throw new ApiError(Code.NOT_FOUND, `Secret [${secret.name}] not found or has no versions.`);
        return n;
      }
    }
  }

  private changeState(name: string, etag: string | undefined, target: VersionState): VersionView {
    const { secret, version } = this.resolve(name, false);
    this.checkEtag(etag, version.etag, `Secret Version [${versionName(secret.name, version.number)}]`);
    if (version.state === 'DESTROYED') {
      throw new ApiError(
        Code.FAILED_PRECONDITION,
        `Secret Version [${versionName(secret.name, version.number)}] is in DESTROYED state.`,
      );
    }
    if (version.state !== target) {
      version.state = target;
      if (target === 'DESTROYED') {
        delete version.payload;
        delete version.crc32c;
        version.destroyTimeMs = this.now().getTime();
      }
      version.etag = this.nextEtag();
      this.mutated();
    }
    return this.versionView(secret, version);
  }

  private secretSubject(s: SecretRecord): FilterSubject {
    const kind = replicationKind(s.replication);
    return {
      id: s.name.slice(s.name.lastIndexOf('/') + 1),
      fullName: s.name,
      createTimeMs: s.createTimeMs,
      labels: s.labels,
      ...(kind ? { replication: kind } : {}),
    };
  }

  private secretView(s: SecretRecord): SecretView {
    return {
      name: s.name,
      createTimeMs: s.createTimeMs,
      labels: { ...s.labels },
      annotations: { ...s.annotations },
      versionAliases: { ...s.versionAliases },
      ...(s.replication ? { replication: copyReplication(s.replication) } : {}),
      etag: s.etag,
    };
  }

  private versionView(s: SecretRecord, v: VersionRecord): VersionView {
    return {
      name: versionName(s.name, v.number),
      createTimeMs: v.createTimeMs,
      ...(v.destroyTimeMs !== undefined ? { destroyTimeMs: v.destroyTimeMs } : {}),
      state: v.state,
      etag: v.etag,
      clientSpecifiedPayloadChecksum: v.clientSpecifiedPayloadChecksum,
      ...(s.replication ? { replication: copyReplication(s.replication) } : {}),
    };
  }
}
