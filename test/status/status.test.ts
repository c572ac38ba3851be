// `npm run status` as a user runs it: a child process against the Secret Manager emulator, whose
// state each test seeds with the real client (versions, and the annotations the refresher writes).
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSecretManagerClient } from "../../function/adapters/secret-manager-store";
import { accessAnnotationKeys, withRefreshState, type RefreshState } from "../../function/core/refresh-state";
import { startSecretManagerEmulator, type SecretManagerEmulator } from "../../local/secret-manager/emulator";
import { addSecretValue, defaultSecretNames, ensureSecrets } from "../../local/token-secrets";
import type { StatusReport } from "../../status/assess";
import { main } from "../../status/cli";
import { expectNoSecrets } from "../helpers/no-secrets";
import { runChild, tsxBin, type ChildResult } from "../helpers/run-child";

const minute = 60_000;

let emulator: SecretManagerEmulator;
let client: SecretManagerServiceClient;
/** Every token value seeded anywhere: none may appear in the output. */
const tokens: string[] = [];

beforeAll(async () => {
    emulator = await startSecretManagerEmulator();
    client = createSecretManagerClient({ projectId: "status-tests", emulatorHost: emulator.host });
});

afterAll(async () => {
    await client?.close();
    await emulator?.stop();
});

const token = () => {
    const value = randomBytes(35).toString("hex");
    tokens.push(value);
    return value;
};

interface Seed {
    /** Token versions to add, oldest first: `true` = add a version. */
    versions?: number;
    /** Access token expiry relative to now, recorded by the refresher; undefined = no annotations at all. */
    expiresIn?: number;
    state?: (refreshVersion: number, accessVersion: number) => RefreshState;
}

/** Creates the four secrets in `project` and seeds them as the refresher would have left them. */
async function seed(project: string, seed: Seed = {}): Promise<void> {
    await ensureSecrets(client, project);
    await addSecretValue(client, project, defaultSecretNames.clientId, "local.status.1");
    await addSecretValue(client, project, defaultSecretNames.clientSecret, token());
    let refreshVersion = 0;
    let accessVersion = 0;
    for (let i = 0; i < (seed.versions ?? 0); i++) {
        refreshVersion = await addSecretValue(client, project, defaultSecretNames.refresh, token());
        accessVersion = await addSecretValue(client, project, defaultSecretNames.access, token());
    }
    const now = Date.now();
    const annotate = async (secretId: string, annotations: Record<string, string>) => {
        const name = `projects/${project}/secrets/${secretId}`;
        const [secret] = await client.getSecret({ name });
        await client.updateSecret({ secret: { name, etag: secret.etag, annotations }, updateMask: { paths: ["annotations"] } });
    };
    let state: RefreshState | undefined = seed.state?.(refreshVersion, accessVersion);
    if (seed.expiresIn !== undefined) {
        const accessExpiresAt = now + seed.expiresIn;
        state = { ...state, pair: { refreshVersion, accessVersion, accessExpiresAt, refreshedAt: accessExpiresAt - 60 * minute } };
        await annotate(defaultSecretNames.access, {
            [accessAnnotationKeys.version]: String(accessVersion),
            [accessAnnotationKeys.expiresAt]: new Date(accessExpiresAt).toISOString(),
        });
    }
    if (state) await annotate(defaultSecretNames.refresh, withRefreshState({}, state));
}

async function runStatus(args: string[], env: Record<string, string> = {}, command: string[] = [tsxBin, "status/main.ts"]): Promise<ChildResult> {
    const result = await runChild([...command, ...args], { env: { SECRET_MANAGER_EMULATOR_HOST: emulator.host, ...env } });
    expect(result.err).not.toMatch(/loopback guard/);
    expectNoSecrets([result.out, result.err], tokens);
    return result;
}

/** The same command in this process (for the details; each state is also run as a child above). */
async function runInProcess(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const code = await main(args, { SECRET_MANAGER_EMULATOR_HOST: emulator.host, ...env }, { out: (t) => (out += t), err: (t) => (err += t) });
    expectNoSecrets([out, err], tokens);
    return { code, out, err };
}

const json = (out: string) => JSON.parse(out) as StatusReport;

describe.concurrent("npm run status", () => {
    it("healthy: exit 0, the token's age and expiry, versions per secret", async () => {
        await seed("status-healthy", { versions: 2, expiresIn: 50 * minute, state: (r) => ({ lease: { holder: "refresh-7f3a", expiresAt: Date.now() + 2 * minute } , pair: { refreshVersion: r } }) });
        const { code, out } = await runStatus(["--project", "status-healthy"]);
        expect(code).toBe(0);
        expect(out).toMatch(/project status-healthy \(Secret Manager emulator at 127\.0\.0\.1:\d+\)/);
        expect(out).toMatch(/state +HEALTHY: the access token v2 has 50 min left/);
        expect(out).toMatch(/access token +v2, expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 50 min\), issued \d+ s ago/);
        expect(out).toMatch(/refresh token +v2, stored \d+ s ago/);
        expect(out).toMatch(/last refresh +.*\(10 min ago\)/);
        expect(out).toMatch(/lease +held by refresh-7f3a until .*\(in 2 min\)/);
        expect(out).toMatch(/last failure +none recorded/);
        expect(out).not.toMatch(/fix/);
        expect(out).toMatch(/b24-access-token +2 +0 +0 +v2/);
        expect(out).toMatch(/b24-client-secret +1 +0 +0 +v1/);

        const report = json((await runInProcess(["--project", "status-healthy", "--json"])).out);
        expect(report).toMatchObject({ state: "healthy", exitCode: 0, fix: null, project: "status-healthy", refreshToken: { version: 2 } });
        expect(report.accessToken).toMatchObject({ version: 2, expirySource: "annotation" });
        expect(report.accessToken!.secondsLeft).toBeGreaterThan(49 * 60);
        expect(report.secrets.map((s) => [s.id, s.enabled])).toEqual([
            ["b24-client-id", 1],
            ["b24-client-secret", 1],
            ["b24-access-token", 2],
            ["b24-refresh-token", 2],
        ]);
    });

    it("stale: exit 1, and where to look", async () => {
        await seed("status-stale", { versions: 1, expiresIn: 3 * minute });
        const { code, out } = await runStatus(["--project", "status-stale"]);
        expect(code).toBe(1);
        expect(out).toMatch(/state +STALE: the access token v1 has only 3 min left/);
        expect(out).toMatch(/fix +Nothing is refreshing the token in this emulator: check that the local refresher \(`npm start`\)/);
        expect(json((await runInProcess(["--project", "status-stale", "--json"])).out)).toMatchObject({ state: "stale", exitCode: 1 });
    });

    it("expired: exit 1", async () => {
        await seed("status-expired", { versions: 1, expiresIn: -5 * minute });
        const { code, out } = await runStatus(["--project", "status-expired"]);
        expect(code).toBe(1);
        expect(out).toMatch(/state +EXPIRED: the access token v1 expired 5 min ago: consumers get expired_token/);
        expect(out).toMatch(/fix +/);
    });

    it("never authorized: exit 2 and the command that fixes it", async () => {
        await seed("status-never");
        const { code, out } = await runStatus(["--project", "status-never"]);
        expect(code).toBe(2);
        expect(out).toMatch(/state +NOT AUTHORIZED: no refresh token is stored in b24-refresh-token/);
        expect(out).toMatch(/fix +Authorize the application: `npm run authorize -- --project status-never`/);
        expect(out).toMatch(/access token +none stored/);
    });

    it("a recorded permanent failure: exit 2 with the refresher's own fix (in process)", async () => {
        await seed("status-failed", {
            versions: 1,
            expiresIn: 20 * minute,
            state: (r) => ({ failure: { code: "invalid_grant", refreshVersion: r, loggedAt: Date.now() - 3 * minute } }),
        });
        const { code, out } = await runInProcess(["--project", "status-failed"]);
        expect(code).toBe(2);
        expect(out).toMatch(/state +REFRESH FAILED: the refresher stopped on "invalid_grant" with refresh token v1/);
        expect(out).toMatch(/Re-authorization is needed: run `npm run authorize -- --project status-failed`/);
        expect(out).toMatch(/last failure +invalid_grant with refresh token v1, logged .*\(3 min ago\)/);
    });

    it("emulator unreachable: exit 3 and a clear message", async () => {
        const closed = await new Promise<number>((resolve) => {
            const server = net.createServer().listen(0, "127.0.0.1", () => {
                const { port } = server.address() as net.AddressInfo;
                server.close(() => resolve(port));
            });
        });
        const host = `127.0.0.1:${closed}`;
        const { code, out } = await runStatus(["--project", "status-healthy", "--timeout", "0.5"], { SECRET_MANAGER_EMULATOR_HOST: host });
        expect(code).toBe(3);
        expect(out).toMatch(/state +UNREACHABLE: Secret Manager did not answer for project status-healthy within 0\.5 s \(connection refused\)/);
        expect(out).toContain(`fix            Is the emulator running at ${host}? Start one with \`npm run emulator\` or \`npm start\`.`);
        const report = json((await runInProcess(["--project", "status-healthy", "--timeout", "0.5", "--json"], { SECRET_MANAGER_EMULATOR_HOST: host })).out);
        expect(report).toMatchObject({ state: "unreachable", exitCode: 3 });
    });

    it("secrets that do not exist: exit 3, deploy first (in process)", async () => {
        const { code, out } = await runInProcess(["--project", "status-nothing"]);
        expect(code).toBe(3);
        expect(out).toMatch(/b24-access-token and b24-refresh-token do not exist in project status-nothing/);
        expect(out).toMatch(/pulumi up/);
    });

    it("--help through npm, and a bad flag exits 64", async () => {
        const help = await runStatus(["--", "--help"], {}, ["npm", "run", "--silent", "status"]);
        expect(help.code).toBe(0);
        expect(help.out).toMatch(/^Usage: npm run status -- \[--project ID\]/);
        expect(help.out).toMatch(/Exit codes:\n {2}0 {3}healthy\n {2}1 {3}stale or expired/);
        const bad = await runInProcess(["--project", "status-healthy", "--verbose"]);
        expect(bad.code).toBe(64);
        expect(bad.err).toMatch(/Unknown option '--verbose'/);
        const noProject = await runInProcess([]);
        expect(noProject.code).toBe(64);
        expect(noProject.err).toMatch(/no project: pass --project ID/);
    });
});
