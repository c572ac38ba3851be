// Translation between the proto objects of @grpc/proto-loader (camelCase fields,
// int64 as strings, enums as names, defaults filled in) and the plain values of state.ts.

import { ApiError, Code } from './errors';
import type { Cmek, Replication, SecretInit, SecretView, VersionView } from './state';

// ---- wire shapes (only the fields the emulator reads or writes) ---------------------------

export interface Timestamp {
  seconds: string;
  nanos: number;
}

interface WireCmek {
  kmsKeyName?: string;
}

export interface WireReplication {
  automatic?: { customerManagedEncryption?: WireCmek | null } | null;
  userManaged?: { replicas?: Array<{ location?: string; customerManagedEncryption?: WireCmek | null }> } | null;
}

export interface WireSecret {
  name?: string;
  replication?: WireReplication | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  versionAliases?: Record<string, string>;
  etag?: string;
  topics?: unknown[];
  rotation?: unknown;
  expireTime?: unknown;
  ttl?: unknown;
  versionDestroyTtl?: unknown;
  customerManagedEncryption?: unknown;
  secretType?: string;
}

export interface WirePayload {
  data?: Buffer;
  dataCrc32c?: string;
  /** Virtual oneof of the proto3 `optional` field: 'dataCrc32c' when the client sent one. */
  _dataCrc32c?: string;
}

// ---- decoding -----------------------------------------------------------------------------

function decodeCmek(c: WireCmek | null | undefined): { customerManagedEncryption?: Cmek } {
  return c?.kmsKeyName ? { customerManagedEncryption: { kmsKeyName: c.kmsKeyName } } : {};
}

export function decodeReplication(r: WireReplication | null | undefined): Replication | undefined {
  if (r?.automatic) return { automatic: decodeCmek(r.automatic.customerManagedEncryption) };
  if (r?.userManaged) {
    return {
      userManaged: {
        replicas: (r.userManaged.replicas ?? []).map((x) => ({
          location: x.location ?? '',
          ...decodeCmek(x.customerManagedEncryption),
        })),
      },
    };
  }
  return undefined;
}

/** map<string, int64> arrives with string values. */
export function decodeAliases(aliases: Record<string, string> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(aliases ?? {})) out[k] = Number(v);
  return out;
}

/** Secret fields a CreateSecret request may carry; refuses features the emulator does not model. */
export function decodeSecretInit(secret: WireSecret | null | undefined): SecretInit {
  if (!secret) throw new ApiError(Code.INVALID_ARGUMENT, 'Field [secret] is required.');
  const unsupported: string[] = [];
  if (secret.topics && secret.topics.length > 0) unsupported.push('topics');
  if (secret.rotation) unsupported.push('rotation');
  if (secret.expireTime) unsupported.push('expire_time');
  if (secret.ttl) unsupported.push('ttl');
  if (secret.versionDestroyTtl) unsupported.push('version_destroy_ttl');
  if (secret.customerManagedEncryption) unsupported.push('customer_managed_encryption');
  if (secret.secretType && secret.secretType !== 'SECRET_TYPE_UNSPECIFIED') unsupported.push('secret_type');
  if (unsupported.length > 0) {
    throw new ApiError(Code.UNIMPLEMENTED, `The Secret Manager emulator does not support Secret.${unsupported.join(', Secret.')}.`);
  }
  const replication = decodeReplication(secret.replication);
  return {
    labels: secret.labels ?? {},
    annotations: secret.annotations ?? {},
    versionAliases: decodeAliases(secret.versionAliases),
    ...(replication ? { replication } : {}),
  };
}

/** The payload data, and the checksum only if the client actually sent one. */
export function decodePayload(p: WirePayload | null | undefined): { data?: Buffer; crc32c?: number } {
  if (!p) return {};
  const sent = p._dataCrc32c === 'dataCrc32c' && p.dataCrc32c !== undefined;
  return { data: p.data ?? Buffer.alloc(0), ...(sent ? { crc32c: Number(p.dataCrc32c) } : {}) };
}

// ---- encoding -----------------------------------------------------------------------------

export function timestamp(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round(ms - seconds * 1000) * 1_000_000 };
}

function encodeCmek(c: Cmek | undefined): { customerManagedEncryption?: { kmsKeyName: string } } {
  return c ? { customerManagedEncryption: { kmsKeyName: c.kmsKeyName } } : {};
}

function encodeReplication(r: Replication): WireReplication {
  if ('automatic' in r) return { automatic: encodeCmek(r.automatic.customerManagedEncryption) };
  return {
    userManaged: {
      replicas: r.userManaged.replicas.map((x) => ({ location: x.location, ...encodeCmek(x.customerManagedEncryption) })),
    },
  };
}

function encodeReplicationStatus(r: Replication): object {
  if ('automatic' in r) return { automatic: {} };
  return { userManaged: { replicas: r.userManaged.replicas.map((x) => ({ location: x.location })) } };
}

export function encodeSecret(s: SecretView): object {
  const aliases: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.versionAliases)) aliases[k] = String(v);
  return {
    name: s.name,
    ...(s.replication ? { replication: encodeReplication(s.replication) } : {}),
    createTime: timestamp(s.createTimeMs),
    labels: s.labels,
    annotations: s.annotations,
    versionAliases: aliases,
    etag: s.etag,
  };
}

export function encodeVersion(v: VersionView): object {
  return {
    name: v.name,
    createTime: timestamp(v.createTimeMs),
    ...(v.destroyTimeMs !== undefined ? { destroyTime: timestamp(v.destroyTimeMs) } : {}),
    state: v.state,
    ...(v.replication ? { replicationStatus: encodeReplicationStatus(v.replication) } : {}),
    etag: v.etag,
    clientSpecifiedPayloadChecksum: v.clientSpecifiedPayloadChecksum,
  };
}
