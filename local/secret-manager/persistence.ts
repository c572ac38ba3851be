// Optional JSON file behind the emulator: read once at start, rewritten atomically
// (temporary file + rename) after every mutation. It holds secret payloads: mode 0600.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StateSnapshot } from './state';

export function loadSnapshot(path: string): StateSnapshot | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as StateSnapshot;
  } catch (err) {
    throw new Error(`Secret Manager emulator state file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

export function saveSnapshot(path: string, snapshot: StateSnapshot): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(snapshot, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}
