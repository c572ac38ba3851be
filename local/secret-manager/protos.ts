// The real service definition, loaded from the .proto files that ship with
// @google-cloud/secret-manager (imports from google-gax's common protos).

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';

export const SERVICE_NAME = 'google.cloud.secretmanager.v1.SecretManagerService';
const SERVICE_PROTO = 'google/cloud/secretmanager/v1/service.proto';

// `require` under CommonJS (tsx, vitest); createRequire when loaded as an ES module.
const resolver: NodeJS.Require = typeof require === 'function' ? require : createRequire(import.meta.url);

/** `<package>/build/protos`, found from the package's entry point so any cwd works. */
function protosDir(pkg: string): string {
  // Both entry points are `<package>/build/src/index.js`; google-gax does not export package.json.
  return join(dirname(dirname(resolver.resolve(pkg))), 'protos');
}

let cached: ServiceDefinition | undefined;

export function loadSecretManagerService(): ServiceDefinition {
  if (!cached) {
    const definition = protoLoader.loadSync(SERVICE_PROTO, {
      includeDirs: [protosDir('@google-cloud/secret-manager'), protosDir('google-gax')],
      keepCase: false, // request fields arrive camelCased (secretId, updateMask, pageToken, ...)
      longs: String, // int64 (Timestamp.seconds, data_crc32c, version_aliases) as decimal strings
      enums: String,
      defaults: true, // absent scalars/maps/lists arrive as ''/{}/[], absent messages as null
      oneofs: true, // proto3 `optional` (data_crc32c) shows up as the virtual oneof `_dataCrc32c`
    });
    cached = definition[SERVICE_NAME] as ServiceDefinition;
    if (!cached) throw new Error(`${SERVICE_NAME} not found in ${SERVICE_PROTO}`);
  }
  return cached;
}
