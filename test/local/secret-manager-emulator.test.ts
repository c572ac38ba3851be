// The Secret Manager emulator, driven by the REAL client library over gRPC.
//
// How the client must be built (same as production code in emulator mode):
//   new SecretManagerServiceClient({ apiEndpoint: '127.0.0.1', port, projectId,
//     sslCreds: grpc.credentials.createInsecure(), universeDomain: 'googleapis.com' })
// `sslCreds` skips credentials for the calls themselves, but before its first call google-gax
// also asks google-auth-library for the "universe domain", and without `universeDomain` that
// means an Application Default Credentials lookup, which probes the GCE metadata server
// (169.254.169.254 and metadata.google.internal) and logs a MetadataLookupWarning.
// Passing `universeDomain` answers the question locally: no credential lookup at all.
//
// Client quirks these tests rely on (@google-cloud/secret-manager 6.3.0, google-gax 5.0.7):
// - Only AccessSecretVersion is retried by default (UNAVAILABLE, RESOURCE_EXHAUSTED;
//   2 s initial backoff with full jitter, 600 s total). Every other method, reads included,
//   is "non_idempotent": one attempt.
// - Per-call `{ retry: createRetryOptions(codes, backoff) }` overrides that; an empty code list
//   disables retrying. `{ maxRetries: n }` gives n attempts and then fails with
//   DEADLINE_EXCEEDED ("Exceeded maximum number of retries"), not the server's code.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { createBackoffSettings, createRetryOptions, grpc } from 'google-gax';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSecretManagerEmulator, type SecretManagerEmulator } from '../../local/secret-manager/emulator';
import { crc32c } from '../../local/secret-manager/crc32c';

const { status } = grpc;
const PROJECT = 'demo-project';
const PARENT = `projects/${PROJECT}`;
const REPO = resolve(__dirname, '../..');

function makeClient(port: number): SecretManagerServiceClient {
  return new SecretManagerServiceClient({
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: grpc.credentials.createInsecure(),
    projectId: PROJECT,
    universeDomain: 'googleapis.com', // no ADC / metadata-server lookup, see the header
  });
}

/** Retry UNAVAILABLE quickly instead of the client's 2 s default backoff. */
const fastRetry = { retry: createRetryOptions([status.UNAVAILABLE], createBackoffSettings(5, 1, 5, 2000, 1, 2000, 3000)) };
/** One attempt only: the server's status code reaches the caller unchanged. */
const noRetry = { retry: createRetryOptions([], createBackoffSettings(5, 1, 5, 2000, 1, 2000, 3000)) };

async function codeOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
  } catch (err) {
    return (err as { code?: number }).code;
  }
  throw new Error('expected the call to fail');
}

let emulator: SecretManagerEmulator;
let client: SecretManagerServiceClient;
let counter = 0;

/** A fresh secret per test, so tests do not share state. */
async function newSecret(prefix: string, extra: { annotations?: Record<string, string>; labels?: Record<string, string> } = {}) {
  const id = `${prefix}-${++counter}`;
  const [secret] = await client.createSecret({
    parent: PARENT,
    secretId: id,
    secret: { replication: { automatic: {} }, ...extra },
  });
  return secret.name!;
}

async function addVersion(secret: string, data: string | Buffer): Promise<string> {
  const [version] = await client.addSecretVersion({ parent: secret, payload: { data: Buffer.from(data) } });
  return version.name!;
}

async function access(name: string, options?: object): Promise<string> {
  const [response] = await client.accessSecretVersion({ name }, options);
  return Buffer.from(response.payload!.data as Uint8Array).toString();
}

beforeAll(async () => {
  emulator = await startSecretManagerEmulator();
  client = makeClient(emulator.port);
});

afterAll(async () => {
  await client?.close();
  await emulator?.stop();
});

describe('secrets', () => {
  it('creates, gets and lists secrets, newest first, with labels, annotations and replication', async () => {
    const a = await newSecret('list', { labels: { team: 'b24' }, annotations: { owner: 'ops' } });
    const b = await newSecret('list');

    const [got] = await client.getSecret({ name: a });
    expect(got.name).toBe(`${PARENT}/secrets/list-${counter - 1}`);
    expect(got.labels).toEqual({ team: 'b24' });
    expect(got.annotations).toEqual({ owner: 'ops' });
    expect(got.replication?.automatic).toBeTruthy();
    expect(got.etag).toMatch(/^"[0-9a-f]+"$/);
    expect(Number(got.createTime!.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);

    const [all] = await client.listSecrets({ parent: PARENT });
    const names = all.map((s) => s.name);
    expect(names.indexOf(b)).toBeLessThan(names.indexOf(a));

    const [page, , raw] = await client.listSecrets({ parent: PARENT, pageSize: 1 }, { autoPaginate: false });
    expect(page).toHaveLength(1);
    expect(raw?.nextPageToken).toBeTruthy();

    const [labelled] = await client.listSecrets({ parent: PARENT, filter: 'labels.team=b24' });
    expect(labelled.map((s) => s.name)).toEqual([a]);

    expect(await codeOf(client.createSecret({ parent: PARENT, secretId: a.split('/').pop()!, secret: { replication: { automatic: {} } } }))).toBe(status.ALREADY_EXISTS);
    expect(await codeOf(client.createSecret({ parent: PARENT, secretId: 'no-replication', secret: {} }))).toBe(status.INVALID_ARGUMENT);
  });

  it('updates annotations with the current etag, and refuses a stale etag with FAILED_PRECONDITION', async () => {
    const name = await newSecret('lease', { annotations: { keep: 'me' } });
    const [before] = await client.getSecret({ name });

    const [after] = await client.updateSecret({
      secret: { name, etag: before.etag, annotations: { lease: 'holder-1' } },
      updateMask: { paths: ['annotations'] },
    });
    expect(after.annotations).toEqual({ lease: 'holder-1' }); // the mask replaces the whole map
    expect(after.etag).toMatch(/^"[0-9a-f]+"$/);
    expect(after.etag).not.toBe(before.etag);

    // A second writer still holding the old etag loses the compare-and-set.
    const stale = client.updateSecret({
      secret: { name, etag: before.etag, annotations: { lease: 'holder-2' } },
      updateMask: { paths: ['annotations'] },
    });
    expect(await codeOf(stale)).toBe(status.FAILED_PRECONDITION);
    expect(emulator.inspect(name)).toMatchObject({ annotations: { lease: 'holder-1' }, etag: after.etag });

    // Only masked fields change; no etag = unconditional.
    const [relabelled] = await client.updateSecret({
      secret: { name, labels: { env: 'dev' }, annotations: { ignored: 'x' } },
      updateMask: { paths: ['labels'] },
    });
    expect(relabelled.labels).toEqual({ env: 'dev' });
    expect(relabelled.annotations).toEqual({ lease: 'holder-1' });
    expect(relabelled.etag).not.toBe(after.etag);

    expect(await codeOf(client.updateSecret({ secret: { name, annotations: {} }, updateMask: { paths: ['replication'] } }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.updateSecret({ secret: { name, annotations: { 'bad key!': 'x' } }, updateMask: { paths: ['annotations'] } }))).toBe(status.INVALID_ARGUMENT);

    // Adding a version does not touch the secret's own etag (the lease survives writes).
    await addVersion(name, 'v1');
    expect(emulator.inspect(name)!.etag).toBe(relabelled.etag);
  });
  it('deletes a secret, honouring its etag, and a re-created secret starts again at version 1', async () => {
    const name = await newSecret('del');
    await addVersion(name, 'x');
    const [secret] = await client.getSecret({ name });
    expect(await codeOf(client.deleteSecret({ name, etag: '"0"' }))).toBe(status.FAILED_PRECONDITION);
    await client.deleteSecret({ name, etag: secret.etag });
    expect(await codeOf(client.getSecret({ name }))).toBe(status.NOT_FOUND);
    expect(emulator.inspect(name)).toBeUndefined();
    await client.createSecret({ parent: PARENT, secretId: name.split('/').pop()!, secret: { replication: { automatic: {} } } });
    expect(await addVersion(name, 'y')).toBe(`${name}/versions/1`);
  });
});

describe('versions', () => {
  it('adds versions numbered 1, 2, 3 and accesses them by number and as latest', async () => {
    const secret = await newSecret('tokens');
    expect(await addVersion(secret, 'one')).toBe(`${secret}/versions/1`);
    expect(await addVersion(secret, 'two')).toBe(`${secret}/versions/2`);

    expect(await access(`${secret}/versions/1`)).toBe('one');
    expect(await access(`${secret}/versions/2`)).toBe('two');

    const [latest] = await client.accessSecretVersion({ name: `${secret}/versions/latest` });
    expect(latest.name).toBe(`${secret}/versions/2`); // resolved to the number
    expect(Buffer.from(latest.payload!.data as Uint8Array).toString()).toBe('two');
    expect(Number(latest.payload!.dataCrc32c)).toBe(crc32c(Buffer.from('two')));

    const [meta] = await client.getSecretVersion({ name: `${secret}/versions/latest` });
    expect(meta).toMatchObject({ name: `${secret}/versions/2`, state: 'ENABLED', clientSpecifiedPayloadChecksum: false });
    expect(meta.etag).toMatch(/^"[0-9a-f]+"$/);

    expect(await addVersion(secret, 'three')).toBe(`${secret}/versions/3`);
    expect(await access(`${secret}/versions/latest`)).toBe('three');
  });

  it('latest does not fall back when the newest version is disabled or destroyed', async () => {
    const secret = await newSecret('nofallback');
    await addVersion(secret, 'old');
    await addVersion(secret, 'new');

    await client.disableSecretVersion({ name: `${secret}/versions/2` });
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/latest` }))).toBe(status.FAILED_PRECONDITION);
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/2` }))).toBe(status.FAILED_PRECONDITION);
    expect(await access(`${secret}/versions/1`)).toBe('old');

    await client.enableSecretVersion({ name: `${secret}/versions/2` });
    expect(await access(`${secret}/versions/latest`)).toBe('new');

    const [destroyed] = await client.destroySecretVersion({ name: `${secret}/versions/2` });
    expect(destroyed.state).toBe('DESTROYED');
    expect(Number(destroyed.destroyTime!.seconds)).toBeGreaterThan(0);
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/latest` }))).toBe(status.FAILED_PRECONDITION);
    expect(await codeOf(client.enableSecretVersion({ name: `${secret}/versions/2` }))).toBe(status.FAILED_PRECONDITION);
    expect(emulator.inspect(secret)!.versions).toEqual([
      { number: 1, state: 'ENABLED', payload: 'old' },
      { number: 2, state: 'DESTROYED' }, // payload erased
    ]);
    // A new version becomes latest again; numbers are never reused.
    expect(await addVersion(secret, 'newer')).toBe(`${secret}/versions/3`);
    expect(await access(`${secret}/versions/latest`)).toBe('newer');
  });

  it('honours the optional etag on state changes', async () => {
    const secret = await newSecret('vetag');
    await addVersion(secret, 'x');
    const [v] = await client.getSecretVersion({ name: `${secret}/versions/1` });
    const [disabled] = await client.disableSecretVersion({ name: v.name, etag: v.etag });
    expect(disabled.etag).not.toBe(v.etag);
    expect(await codeOf(client.destroySecretVersion({ name: v.name, etag: v.etag }))).toBe(status.FAILED_PRECONDITION);
    await client.destroySecretVersion({ name: v.name, etag: disabled.etag });
  });

  it('resolves version aliases set through UpdateSecret', async () => {
    const secret = await newSecret('alias');
    await addVersion(secret, 'first');
    await addVersion(secret, 'second');
    const [updated] = await client.updateSecret({ secret: { name: secret, versionAliases: { stable: 1 } }, updateMask: { paths: ['version_aliases'] } });
    expect(updated.versionAliases).toEqual({ stable: '1' });
    expect(await access(`${secret}/versions/stable`)).toBe('first');
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/canary` }))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.updateSecret({ secret: { name: secret, versionAliases: { x: 9 } }, updateMask: { paths: ['version_aliases'] } }))).toBe(status.INVALID_ARGUMENT);
  });

  it('answers NOT_FOUND for unknown secrets and versions, INVALID_ARGUMENT for malformed names', async () => {
    const secret = await newSecret('nf');
    expect(await codeOf(client.getSecret({ name: `${PARENT}/secrets/does-not-exist` }))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.accessSecretVersion({ name: `${PARENT}/secrets/does-not-exist/versions/1` }))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/latest` }))).toBe(status.NOT_FOUND);
    await addVersion(secret, 'x');
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/7` }))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.addSecretVersion({ parent: `${PARENT}/secrets/does-not-exist`, payload: { data: Buffer.from('x') } }))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.getSecret({ name: 'secrets/x' }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/0` }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.getIamPolicy({ resource: secret }))).toBe(status.UNIMPLEMENTED);
  });

  it('limits payloads to 64 KiB and checks a client-sent CRC32C', async () => {
    const secret = await newSecret('size');
    expect(await codeOf(client.addSecretVersion({ parent: secret, payload: { data: Buffer.alloc(65537, 1) } }))).toBe(status.INVALID_ARGUMENT);
    await addVersion(secret, Buffer.alloc(65536, 1));

    const data = Buffer.from('checked');
    expect(await codeOf(client.addSecretVersion({ parent: secret, payload: { data, dataCrc32c: crc32c(data) + 1 } }))).toBe(status.INVALID_ARGUMENT);
    const [v] = await client.addSecretVersion({ parent: secret, payload: { data, dataCrc32c: crc32c(data) } });
    expect(v).toMatchObject({ name: `${secret}/versions/2`, clientSpecifiedPayloadChecksum: true });
  });

  it('lists versions newest first, filters by state and pages', async () => {
    const secret = await newSecret('listv');
    for (const p of ['a', 'b', 'c', 'd']) await addVersion(secret, p);
    await client.disableSecretVersion({ name: `${secret}/versions/2` });
    await client.destroySecretVersion({ name: `${secret}/versions/1` });

    const numbers = (vs: Array<{ name?: string | null }>) => vs.map((v) => Number(v.name!.split('/').pop()));
    const [all] = await client.listSecretVersions({ parent: secret });
    expect(numbers(all)).toEqual([4, 3, 2, 1]);
    expect(all.map((v) => v.state)).toEqual(['ENABLED', 'ENABLED', 'DISABLED', 'DESTROYED']);

    const byState = async (filter: string) => numbers((await client.listSecretVersions({ parent: secret, filter }))[0]);
    expect(await byState('state:ENABLED')).toEqual([4, 3]);
    expect(await byState('state:DISABLED')).toEqual([2]);
    expect(await byState('state:DESTROYED')).toEqual([1]);
    expect(await byState('state:ENABLED OR state:DISABLED')).toEqual([4, 3, 2]);
    expect(await byState('NOT state:DESTROYED')).toEqual([4, 3, 2]);
    expect(await codeOf(client.listSecretVersions({ parent: secret, filter: 'colour:blue' }))).toBe(status.INVALID_ARGUMENT);

    const [first, next, raw] = await client.listSecretVersions({ parent: secret, pageSize: 3 }, { autoPaginate: false });
    expect(numbers(first)).toEqual([4, 3, 2]);
    expect(raw?.totalSize).toBe(4);
    const [second] = await client.listSecretVersions(next!, { autoPaginate: false });
    expect(numbers(second)).toEqual([1]);
  });
});

describe('test hooks', () => {
  it('fails AddSecretVersion once with UNAVAILABLE; the client does not retry it', async () => {
    const secret = await newSecret('fault');
    const other = await newSecret('fault-other');
    emulator.clearCalls();
    emulator.injectFault({ method: 'AddSecretVersion', code: status.UNAVAILABLE, match: (n) => n === secret });

    await addVersion(other, 'unaffected'); // match: only the one secret
    expect(await codeOf(client.addSecretVersion({ parent: secret, payload: { data: Buffer.from('lost') } }))).toBe(status.UNAVAILABLE);
    expect(emulator.inspect(secret)!.versions).toEqual([]); // no effect
    expect(await addVersion(secret, 'second try')).toBe(`${secret}/versions/1`); // consumed

    expect(emulator.calls.map(({ method, name, code }) => ({ method, name, code }))).toEqual([
      { method: 'AddSecretVersion', name: other, code: 0 },
      { method: 'AddSecretVersion', name: secret, code: status.UNAVAILABLE },
      { method: 'AddSecretVersion', name: secret, code: 0 },
    ]);
    const at = emulator.calls.map((c) => c.at);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
  });

  it('with afterEffect the write happens although the caller sees an error (a lost response)', async () => {
    const secret = await newSecret('lost');
    emulator.injectFault({ method: 'AddSecretVersion', code: status.UNAVAILABLE, afterEffect: true });
    expect(await codeOf(client.addSecretVersion({ parent: secret, payload: { data: Buffer.from('written') } }))).toBe(status.UNAVAILABLE);
    expect(emulator.inspect(secret)!.versions).toEqual([{ number: 1, state: 'ENABLED', payload: 'written' }]);
  });

  it('faults on reads: retried by AccessSecretVersion with fast per-call retry settings, surfaced without', async () => {
    const secret = await newSecret('readfault');
    await addVersion(secret, 'value');
    emulator.clearCalls();

    emulator.injectFault({ method: 'AccessSecretVersion', code: status.UNAVAILABLE, times: 2 });
    expect(await access(`${secret}/versions/1`, fastRetry)).toBe('value');
    expect(emulator.calls.map((c) => c.code)).toEqual([status.UNAVAILABLE, status.UNAVAILABLE, 0]);

    emulator.injectFault({ method: '*', code: status.UNAVAILABLE, times: Infinity });
    expect(await codeOf(client.accessSecretVersion({ name: `${secret}/versions/1` }, noRetry))).toBe(status.UNAVAILABLE);
    expect(await codeOf(client.getSecret({ name: secret }))).toBe(status.UNAVAILABLE); // never retried
    emulator.clearFaults();

    emulator.injectFault({ method: 'GetSecret', code: 0, delayMs: 150 });
    const started = Date.now();
    await client.getSecret({ name: secret });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('staleLatest makes latest resolve to an older version until turned off', async () => {
    const secret = await newSecret('stale');
    await addVersion(secret, 'v1');
    await addVersion(secret, 'v2');
    emulator.staleLatest(secret, 1);
    expect(await access(`${secret}/versions/latest`)).toBe('v1');
    expect(await access(`${secret}/versions/2`)).toBe('v2'); // by number: strongly consistent
    emulator.staleLatest(secret, 0);
    expect(await access(`${secret}/versions/latest`)).toBe('v2');
  });
});

describe('persistence', () => {
  it('keeps secrets, versions, annotations and etags across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sm-emulator-'));
    const file = join(dir, 'nested', 'state.json');
    try {
      const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
      const first = await startSecretManagerEmulator({ persistPath: file, now: () => new Date(T0) });
      const c1 = makeClient(first.port);
      const [secret] = await c1.createSecret({ parent: PARENT, secretId: 'kept', secret: { replication: { automatic: {} } } });
      expect(secret.createTime).toEqual({ seconds: String(T0 / 1000), nanos: 0 }); // the injected clock
      await c1.addSecretVersion({ parent: secret.name, payload: { data: Buffer.from('p1') } });
      await c1.addSecretVersion({ parent: secret.name, payload: { data: Buffer.from('p2') } });
      const [destroyed] = await c1.destroySecretVersion({ name: `${secret.name}/versions/1` });
      expect(destroyed.destroyTime).toEqual({ seconds: String(T0 / 1000), nanos: 0 });
      const [updated] = await c1.updateSecret({ secret: { name: secret.name, annotations: { a: 'b' } }, updateMask: { paths: ['annotations'] } });
      await c1.close();
      await first.stop();
      expect(JSON.parse(readFileSync(file, 'utf8')).format).toBe('secret-manager-emulator/1');
      expect(existsSync(`${file}.${process.pid}.tmp`)).toBe(false);

      const second = await startSecretManagerEmulator({ persistPath: file });
      const c2 = makeClient(second.port);
      try {
        const [again] = await c2.getSecret({ name: secret.name });
        expect(again).toMatchObject({ etag: updated.etag, annotations: { a: 'b' }, createTime: secret.createTime });
        expect(updated.etag).not.toBe(secret.etag); // distinct etags even with a frozen clock
        const [latest] = await c2.accessSecretVersion({ name: `${secret.name}/versions/latest` });
        expect(Buffer.from(latest.payload!.data as Uint8Array).toString()).toBe('p2');
        expect(second.inspect(secret.name!)!.versions.map((v) => v.state)).toEqual(['DESTROYED', 'ENABLED']);
        const [v3] = await c2.addSecretVersion({ parent: secret.name, payload: { data: Buffer.from('p3') } });
        expect(v3.name).toBe(`${secret.name}/versions/3`);
      } finally {
        await c2.close();
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm run emulator', () => {
  it('prints the host line, serves the real client and exits on SIGTERM', async () => {
    // detached: its own process group, so the signal reaches npm, sh, tsx and node alike,
    // as Ctrl-C or a supervisor stopping the group would.
    const child = spawn('npm', ['run', 'emulator', '--', '--port', '0'], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const closed = new Promise<void>((done) => child.on('close', () => done()));
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const host = await new Promise<string>((found, failed) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /^SECRET_MANAGER_EMULATOR_HOST=(127\.0\.0\.1:\d+)$/m.exec(stdout);
          if (m) found(m[1]!);
        });
        child.on('exit', (code) => failed(new Error(`emulator exited early (${code}): ${stderr}`)));
      });
      // npm adds its own "> script" banner; the program itself prints exactly one line.
      expect(stdout.split('\n').filter((l) => l.includes('SECRET_MANAGER_EMULATOR_HOST'))).toHaveLength(1);

      const port = Number(host.split(':')[1]);
      const c = makeClient(port);
      const [secret] = await c.createSecret({ parent: PARENT, secretId: 'cli', secret: { replication: { automatic: {} } } });
      await c.addSecretVersion({ parent: secret.name, payload: { data: Buffer.from('via cli') } });
      const [v] = await c.accessSecretVersion({ name: `${secret.name}/versions/latest` });
      expect(Buffer.from(v.payload!.data as Uint8Array).toString()).toBe('via cli');
      await c.close();

      process.kill(-child.pid!, 'SIGTERM');
      await closed; // all processes holding the pipes are gone
      expect(stderr).toContain('SIGTERM, stopping');
      const refused = await new Promise<boolean>((done) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('connect', () => (socket.destroy(), done(false)));
        socket.on('error', () => done(true));
      });
      expect(refused).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });

  it('exits 2 with a clear message on a bad flag', async () => {
    const child = spawn(process.execPath, [join(REPO, 'node_modules/tsx/dist/cli.mjs'), 'local/secret-manager/main.ts', '--prot', '1'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--prot'");
  });
});
