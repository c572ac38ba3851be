// `npm run emulator [-- --port N] [--persist FILE]`: runs the Secret Manager emulator until
// SIGINT/SIGTERM. Prints exactly one line on stdout, `SECRET_MANAGER_EMULATOR_HOST=127.0.0.1:PORT`
// (so `eval "$(npm run --silent emulator)"`-style scripting works); everything else goes to stderr.

import { parseArgs } from 'node:util';
import { startSecretManagerEmulator } from './emulator';

const DEFAULT_PORT = 8085;

const USAGE = `Usage: npm run emulator -- [--port N] [--persist FILE]

Runs a Secret Manager emulator (real gRPC API, plaintext) on 127.0.0.1.

  --port N        port to listen on (default ${DEFAULT_PORT}; 0 picks a free port)
  --persist FILE  keep state in FILE (JSON, holds payloads in clear): loaded at start
                  if it exists, rewritten after every change
  -h, --help      show this help

Prints SECRET_MANAGER_EMULATOR_HOST=127.0.0.1:PORT on stdout once it listens.
Clients: new SecretManagerServiceClient({ apiEndpoint: '127.0.0.1', port: PORT,
  sslCreds: grpc.credentials.createInsecure(), universeDomain: 'googleapis.com', projectId })
`;

function fail(message: string): never {
  process.stderr.write(`secret-manager emulator: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { port?: string; persist?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        port: { type: 'string' },
        persist: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stderr.write(USAGE);
    return;
  }
  let port = DEFAULT_PORT;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) {
      fail(`--port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}`);
    }
    port = Number(values.port);
  }
  if (values.persist === '') fail('--persist needs a file name');

  const emulator = await startSecretManagerEmulator({
    port,
    ...(values.persist ? { persistPath: values.persist } : {}),
  });
  process.stdout.write(`SECRET_MANAGER_EMULATOR_HOST=${emulator.host}\n`);
  process.stderr.write(
    `Secret Manager emulator listening on ${emulator.host}` +
      (values.persist ? `, state in ${values.persist}` : ', state in memory only') +
      '. Ctrl-C to stop.\n',
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`Secret Manager emulator: ${signal}, stopping.\n`);
    emulator.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`Secret Manager emulator: stop failed: ${(err as Error)?.message ?? err}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`secret-manager emulator: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
});
