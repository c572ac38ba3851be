// vitest setup file: installs the loopback guard in the test process and fails the file if
// anything tried to reach beyond 127.0.0.1.
import { createRequire } from "node:module";
import * as path from "node:path";
import { afterAll, expect } from "vitest";

export const loopbackGuardPath = path.join(__dirname, "loopback-guard.cjs");
createRequire(__filename)(loopbackGuardPath);

afterAll(() => {
    const violations = (globalThis as { __loopbackViolations?: string[] }).__loopbackViolations ?? [];
    expect(violations, "connections attempted beyond loopback").toEqual([]);
});
