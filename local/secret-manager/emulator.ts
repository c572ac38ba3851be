// A Secret Manager emulator that speaks the real gRPC API
// (google.cloud.secretmanager.v1.SecretManagerService) on 127.0.0.1, plaintext.
//
// The real client reaches it with
//   new SecretManagerServiceClient({ apiEndpoint: '127.0.0.1', port, projectId,
//     sslCreds: grpc.credentials.createInsecure(), universeDomain: 'googleapis.com' })
// (`universeDomain` stops google-gax from looking up Application Default Credentials
// just to learn the universe domain, a lookup that probes the GCE metadata server.)
//
// Rules live in state.ts, request/response translation in codec.ts, faults in faults.ts.

import * as grpc from '@grpc/grpc-js';
import { decodeAliases, decodePayload, decodeSecretInit, encodeSecret, encodeVersion } from './codec';
import type { WirePayload, WireSecret } from './codec';
import { ApiError, Code, codeName } from './errors';
import { FaultBook, type FaultSpec } from './faults';
import { loadSnapshot, saveSnapshot } from './persistence';
import { loadSecretManagerService } from './protos';
import { SecretStore, type Inspection } from './state';

export type { FaultSpec } from './faults';

export interface EmulatorOptions {
  /** Default 0 = ephemeral. */
  port?: number;
  /** Optional JSON file: loaded at start if it exists, rewritten atomically after every mutation. */
  persistPath?: string;
  /** Clock for create_time/destroy_time (and etags); default real time. */
  now?: () => Date;
}

export interface CallRecord {
  /** RPC name as in the proto, e.g. 'AccessSecretVersion'. */
  method: string;
  /**
   * The resource the call is about: the request's `name` (or `parent`; `secret.name` for
   * UpdateSecret; `resource` for IAM calls). For CreateSecret it is the would-be secret name
   * `{parent}/secrets/{secret_id}`, so a fault can target one secret.
   */
  name: string;
  /** Final gRPC status code; -1 while the call is still being answered (e.g. during delayMs). */
  code: number;
  /** Arrival time in ms (fractional), strictly increasing in arrival order. */
  at: number;
}

export interface SecretManagerEmulator {
  /** "127.0.0.1:PORT": the value for SECRET_MANAGER_EMULATOR_HOST. */
  host: string;
  port: number;
  /** Every RPC in arrival order, including faulted and unimplemented ones. */
  calls: CallRecord[];
  clearCalls(): void;
  injectFault(f: FaultSpec): void;
  clearFaults(): void;
  /** Makes versions/latest resolve `lagVersions` versions behind the newest; 0 turns it off. */
  staleLatest(secretResourceName: string, lagVersions: number): void;
  inspect(secretResourceName: string): Inspection | undefined;
  stop(): Promise<void>;
}

// Request shapes as decoded by protos.ts (camelCase, defaults filled in).
interface NameRequest {
  name: string;
  etag?: string;
}
interface ListRequest {
  parent: string;
  pageSize: number;
  pageToken: string;
  filter: string;
}
interface CreateSecretRequest {
  parent: string;
  secretId: string;
  secret: WireSecret | null;
}
interface UpdateSecretRequest {
  secret: WireSecret | null;
  updateMask: { paths: string[] } | null;
}
interface AddSecretVersionRequest {
  parent: string;
  payload: WirePayload | null;
}

type Status = Partial<grpc.StatusObject>;
type Effect = (request: never) => object;

interface Rpc {
  resource: (request: never) => string;
  effect: Effect;
}

function stringField(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

export async function startSecretManagerEmulator(options: EmulatorOptions = {}): Promise<SecretManagerEmulator> {
  const service = loadSecretManagerService();
  const { persistPath } = options;
  const snapshot = persistPath ? loadSnapshot(persistPath) : undefined;
  const store = new SecretStore({ ...(options.now ? { now: options.now } : {}), ...(snapshot ? { snapshot } : {}) });
  const faults = new FaultBook();
  const calls: CallRecord[] = [];
  const delays = new Set<NodeJS.Timeout>();
  let lastAt = 0;
  let stopped = false;

  const byName = (r: { name?: unknown }): string => stringField(r.name);
  const byParent = (r: { parent?: unknown }): string => stringField(r.parent);

  const rpcs: Record<string, Rpc> = {
    CreateSecret: {
      resource: (r: CreateSecretRequest) => `${r.parent}/secrets/${r.secretId}`,
      effect: (r: CreateSecretRequest) => encodeSecret(store.createSecret(r.parent, r.secretId, decodeSecretInit(r.secret))),
    },
    GetSecret: { resource: byName, effect: (r: NameRequest) => encodeSecret(store.getSecret(r.name)) },
    ListSecrets: {
      resource: byParent,
      effect: (r: ListRequest) => {
        const page = store.listSecrets(r.parent, r);
        return { secrets: page.items.map(encodeSecret), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
      },
    },
    UpdateSecret: {
      resource: (r: UpdateSecretRequest) => stringField(r.secret?.name),
      effect: (r: UpdateSecretRequest) => {
        if (!r.secret) throw new ApiError(Code.INVALID_ARGUMENT, 'Field [secret] is required.');
        const patch = {
          name: r.secret.name ?? '',
          etag: r.secret.etag ?? '',
          labels: r.secret.labels ?? {},
          annotations: r.secret.annotations ?? {},
          versionAliases: decodeAliases(r.secret.versionAliases),
        };
        return encodeSecret(store.updateSecret(patch, r.updateMask?.paths ?? []));
      },
    },
    DeleteSecret: {
      resource: byName,
      effect: (r: NameRequest) => {
        store.deleteSecret(r.name, r.etag);
        return {};
      },
    },
    AddSecretVersion: {
      resource: byParent,
      effect: (r: AddSecretVersionRequest) => {
        const { data, crc32c } = decodePayload(r.payload);
        return encodeVersion(store.addSecretVersion(r.parent, data, crc32c));
      },
    },
    GetSecretVersion: { resource: byName, effect: (r: NameRequest) => encodeVersion(store.getSecretVersion(r.name)) },
    AccessSecretVersion: {
      resource: byName,
      effect: (r: NameRequest) => {
        const access = store.accessSecretVersion(r.name);
        return { name: access.name, payload: { data: access.data, dataCrc32c: String(access.crc32c) } };
      },
    },
    ListSecretVersions: {
      resource: byParent,
      effect: (r: ListRequest) => {
        const page = store.listSecretVersions(r.parent, r);
        return { versions: page.items.map(encodeVersion), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
      },
    },
    EnableSecretVersion: {
      resource: byName,
      effect: (r: NameRequest) => encodeVersion(store.enableSecretVersion(r.name, r.etag)),
    },
    DisableSecretVersion: {
      resource: byName,
      effect: (r: NameRequest) => encodeVersion(store.disableSecretVersion(r.name, r.etag)),
    },
    DestroySecretVersion: {
      resource: byName,
      effect: (r: NameRequest) => encodeVersion(store.destroySecretVersion(r.name, r.etag)),
    },
  };

  function arrival(): number {
    const t = performance.timeOrigin + performance.now();
    lastAt = t > lastAt ? t : lastAt + 0.001;
    return lastAt;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        delays.delete(timer);
        resolve();
      }, ms);
      delays.add(timer);
    });
  }

  function persist(): void {
    if (persistPath) saveSnapshot(persistPath, store.snapshot());
  }

  function statusOf(err: unknown): Status {
    if (err instanceof ApiError) return { code: err.code, details: err.message };
    process.stderr.write(`secret-manager emulator: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return { code: Code.INTERNAL, details: `Secret Manager emulator internal error: ${(err as Error)?.message ?? err}` };
  }

  function handler(method: string): grpc.handleUnaryCall<unknown, unknown> {
    const rpc: Rpc = rpcs[method] ?? {
      resource: (r: { name?: unknown; parent?: unknown; resource?: unknown }) =>
        stringField(r.name) || stringField(r.parent) || stringField(r.resource),
      effect: () => {
        throw new ApiError(Code.UNIMPLEMENTED, `Method ${method} is not implemented by the Secret Manager emulator.`);
      },
    };
    /** Fault, effect, persistence and answer for one call; never throws. */
    async function answer(request: never, record: CallRecord): Promise<{ error?: Status; response?: object } | undefined> {
      let fault;
      try {
        fault = faults.take(method, record.name);
      } catch (err) {
        return { error: statusOf(err) }; // a throwing FaultSpec.match
      }
      if (fault && fault.delayMs > 0) {
        await sleep(fault.delayMs);
        if (stopped) return undefined; // forceShutdown cancels the call
      }
      const injected: Status | undefined =
        fault && fault.code !== Code.OK
          ? { code: fault.code, details: `Injected fault (${codeName(fault.code)}) from the Secret Manager emulator.` }
          : undefined;
      if (injected && !fault?.afterEffect) return { error: injected };
      let outcome: { error?: Status; response?: object };
      const before = store.mutations;
      try {
        outcome = { response: rpc.effect(request) };
      } catch (err) {
        outcome = { error: statusOf(err) };
      }
      if (store.mutations !== before) {
        try {
          persist();
        } catch (err) {
          outcome = { error: statusOf(err) };
        }
      }
      return injected ? { error: injected } : outcome;
    }

    return (call, callback) => {
      const request = call.request as never;
      const record: CallRecord = { method, name: rpc.resource(request), code: -1, at: arrival() };
      calls.push(record);
      void answer(request, record).then((outcome) => {
        if (!outcome) return;
        record.code = outcome.error?.code ?? Code.OK;
        if (outcome.error) callback(outcome.error);
        else callback(null, outcome.response);
      });
    };
  }

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(service)) implementation[method] = handler(method);

  const server = new grpc.Server();
  server.addService(service, implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, boundPort) =>
      err ? reject(err) : resolve(boundPort),
    );
  });

  return {
    host: `127.0.0.1:${port}`,
    port,
    calls,
    clearCalls: () => {
      calls.length = 0;
    },
    injectFault: (f) => faults.inject(f),
    clearFaults: () => faults.clear(),
    staleLatest: (secret, lag) => store.staleLatest(secret, lag),
    inspect: (secret) => store.inspect(secret),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const pendingDelays = delays.size > 0;
      for (const timer of delays) clearTimeout(timer);
      delays.clear();
      if (pendingDelays) {
        server.forceShutdown();
        return;
      }
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
