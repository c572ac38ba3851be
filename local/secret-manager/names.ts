// Resource names of the Secret Manager API, parsed the way the service does.
// Only global secrets are emulated (`projects/{project}/secrets/{secret}`);
// regional names (`projects/{p}/locations/{l}/...`) are recognised and refused
// with UNIMPLEMENTED rather than mistaken for malformed input.

import { ApiError, Code } from './errors';

const SEGMENT = '[^/]+';
const PROJECT_RE = new RegExp(`^projects/(${SEGMENT})$`);
const SECRET_RE = new RegExp(`^projects/(${SEGMENT})/secrets/(${SEGMENT})$`);
const VERSION_RE = new RegExp(`^projects/(${SEGMENT})/secrets/(${SEGMENT})/versions/(${SEGMENT})$`);
const REGIONAL_RE = new RegExp(`^projects/${SEGMENT}/locations/${SEGMENT}(/|$)`);

/** Secret ids: 1-255 letters, digits, hyphens and underscores. */
export const SECRET_ID_RE = /^[A-Za-z0-9_-]{1,255}$/;
/** Version aliases: a letter, then up to 62 letters, digits, hyphens or underscores. */
export const ALIAS_RE = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const VERSION_NUMBER_RE = /^[1-9][0-9]{0,15}$/;

export type VersionRef =
  | { kind: 'latest' }
  | { kind: 'number'; number: number }
  | { kind: 'alias'; alias: string };

function refuseRegional(name: string): void {
  if (REGIONAL_RE.test(name)) {
    throw new ApiError(Code.UNIMPLEMENTED, `Regional secrets are not supported by this emulator: [${name}].`);
  }
}

function required(field: string, value: string): void {
  if (!value) throw new ApiError(Code.INVALID_ARGUMENT, `Field [${field}] is required.`);
}

/** `projects/{project}` → the same string, validated. */
export function parseProjectName(parent: string, field = 'parent'): string {
  required(field, parent);
  refuseRegional(parent);
  if (!PROJECT_RE.test(parent)) {
    throw new ApiError(Code.INVALID_ARGUMENT, `Invalid resource field value in the request: [${field}] = [${parent}].`);
  }
  return parent;
}

/** `projects/{project}/secrets/{secret}` → the same string, validated. */
export function parseSecretName(name: string, field = 'name'): string {
  required(field, name);
  refuseRegional(name);
  const m = SECRET_RE.exec(name);
  if (!m || !SECRET_ID_RE.test(m[2]!)) {
    throw new ApiError(Code.INVALID_ARGUMENT, `Invalid resource field value in the request: [${field}] = [${name}].`);
  }
  return name;
}

/** `projects/{project}/secrets/{secret}/versions/{version}` → secret name and version reference. */
export function parseVersionName(name: string, field = 'name'): { secret: string; ref: VersionRef } {
  required(field, name);
  refuseRegional(name);
  const m = VERSION_RE.exec(name);
  if (!m || !SECRET_ID_RE.test(m[2]!)) {
    throw new ApiError(Code.INVALID_ARGUMENT, `Invalid resource field value in the request: [${field}] = [${name}].`);
  }
  const secret = `projects/${m[1]}/secrets/${m[2]}`;
  const version = m[3]!;
  if (version === 'latest') return { secret, ref: { kind: 'latest' } };
  if (VERSION_NUMBER_RE.test(version)) return { secret, ref: { kind: 'number', number: Number(version) } };
  if (ALIAS_RE.test(version)) return { secret, ref: { kind: 'alias', alias: version } };
  throw new ApiError(Code.INVALID_ARGUMENT, `Invalid resource field value in the request: [${field}] = [${name}].`);
}

export function versionName(secret: string, n: number): string {
  return `${secret}/versions/${n}`;
}
