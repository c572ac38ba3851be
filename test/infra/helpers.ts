// Shared harness for the infra tests: Pulumi mocks that record every resource, a call mock that
// refuses any token it was not told about, one promiseOf, and the example stack's configuration.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const projectName = "b24-token-rotation";

/** A plain value that a test puts into `clientSecret`; it must never show up unwrapped. */
export const plainClientSecret = "test-client-secret-5f0c9a1e";

export interface ResourceRecord {
    type: string;
    name: string;
    custom: boolean;
    /** As the mock monitor receives them: secrets wrapped as `{ [specialSigKey]: specialSecretSig, value }`. */
    inputs: Record<string, unknown>;
}

/** Calls the program may make; none today, so every invoke fails loudly. */
export type ExpectedCalls = Record<string, (inputs: Record<string, unknown>) => Record<string, unknown>>;

const fakeProjectNumber = "123456789012";

/** Plausible provider-computed outputs, so dependent inputs look like the real thing. */
function computedState(type: string, inputs: Record<string, unknown>): { id?: string; state: Record<string, unknown> } {
    const get = (key: string) => String(pulumi.runtime.unwrapRpcSecret(inputs[key]) ?? "");
    const project = get("project");
    switch (type) {
        case "gcp:serviceaccount/account:Account": {
            const email = `${get("accountId")}@${project}.iam.gserviceaccount.com`;
            const id = `projects/${project}/serviceAccounts/${email}`;
            return { id, state: { email, member: `serviceAccount:${email}`, name: id } };
        }
        case "gcp:secretmanager/secret:Secret": {
            const id = `projects/${project}/secrets/${get("secretId")}`;
            return { id, state: { name: id } };
        }
        case "gcp:secretmanager/secretVersion:SecretVersion":
            return { id: `${get("secret")}/versions/1`, state: { version: "1", name: `${get("secret")}/versions/1` } };
        case "gcp:projects/iAMCustomRole:IAMCustomRole": {
            const id = `projects/${project}/roles/${get("roleId")}`;
            return { id, state: { name: id } };
        }
        case "gcp:projects/serviceIdentity:ServiceIdentity": {
            const email = `service-${fakeProjectNumber}@gcp-sa-${get("service").split(".")[0]}.iam.gserviceaccount.com`;
            return { state: { email, member: `serviceAccount:${email}` } };
        }
        case "gcp:pubsub/topic:Topic":
            return { id: `projects/${project}/topics/${get("name")}`, state: {} };
        case "gcp:monitoring/notificationChannel:NotificationChannel":
            return { id: `projects/${project}/notificationChannels/42`, state: { name: `projects/${project}/notificationChannels/42` } };
        case "gcp:cloudfunctionsv2/function:Function":
            return { state: { url: `https://${get("location")}-${project}.cloudfunctions.net/${get("name")}` } };
        default:
            return { state: {} };
    }
}

export function createMocks(records: ResourceRecord[], expectedCalls: ExpectedCalls = {}, calls: string[] = []): pulumi.runtime.Mocks {
    return {
        newResource(args) {
            records.push({ type: args.type, name: args.name, custom: args.custom !== false, inputs: args.inputs as Record<string, unknown> });
            const computed = computedState(args.type, args.inputs as Record<string, unknown>);
            return { id: computed.id ?? `${args.name}-id`, state: { ...args.inputs, ...computed.state } };
        },
        call(args) {
            calls.push(args.token);
            const handler = expectedCalls[args.token];
            if (!handler) throw new Error(`unexpected provider call ${args.token}: add it to the test's expected calls if the program really needs it`);
            return handler(args.inputs as Record<string, unknown>);
        },
    };
}

/** Resolves an Output's value (secret or not), or undefined when it is unknown. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

/** Unwraps a mock input that may be an RPC secret. */
export function unwrap<T = unknown>(value: unknown): T {
    return pulumi.runtime.unwrapRpcSecret(value) as T;
}

export function isWrappedSecret(value: unknown): boolean {
    return pulumi.runtime.isRpcSecret(value);
}

/** The example stack (Pulumi.dev.yaml) as flat `namespace:key` config, plus the secret the file leaves out. */
export function exampleStackConfig(): Record<string, string> {
    const file = parseYaml(fs.readFileSync(path.join(repoRoot, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(file.config)) config[key] = String(value);
    config[`${projectName}:clientSecret`] = plainClientSecret;
    return config;
}

export interface Evaluation {
    records: ResourceRecord[];
    /** Every provider function the program invoked, expected or not. */
    calls: string[];
    /** The program module's exports (stack outputs). */
    exports: Record<string, unknown>;
}

/**
 * Evaluates infra/index.ts under mocks with `config` (keys in `secretKeys` marked encrypted) and
 * waits until every registration has reached the mock monitor.
 */
export async function evaluateProgram(options: {
    config: Record<string, string>;
    secretKeys?: string[];
    importProgram: () => Promise<Record<string, unknown>>;
    expectedCalls?: ExpectedCalls;
    stack?: string;
}): Promise<Evaluation> {
    const records: ResourceRecord[] = [];
    const calls: string[] = [];
    await pulumi.runtime.setMocks(createMocks(records, options.expectedCalls, calls), projectName, options.stack ?? "dev", false);
    pulumi.runtime.setAllConfig(options.config, options.secretKeys ?? [`${projectName}:clientSecret`]);
    const exports = await options.importProgram();
    for (const value of Object.values(exports)) {
        if (pulumi.Output.isInstance(value)) await promiseOf(value);
    }
    await pulumi.runtime.disconnect();
    return { records, calls, exports };
}

/** Waits for every registration the current mocks have seen (components created by the test itself). */
export async function settle(): Promise<void> {
    await pulumi.runtime.disconnect();
}

export function ofType(records: ResourceRecord[], type: string): ResourceRecord[] {
    return records.filter((r) => r.type === type);
}

export function single(records: ResourceRecord[], type: string): ResourceRecord {
    const found = ofType(records, type);
    if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}: ${found.map((r) => r.name).join(", ")}`);
    return found[0]!;
}

/** Every string anywhere in `value` that is not inside a wrapped secret. */
export function plainStrings(value: unknown, out: string[] = []): string[] {
    if (isWrappedSecret(value)) return out;
    if (typeof value === "string") out.push(value);
    else if (Array.isArray(value)) for (const v of value) plainStrings(v, out);
    else if (value && typeof value === "object") for (const v of Object.values(value)) plainStrings(v, out);
    return out;
}

/** A scratch directory removed by the caller. */
export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `b24-infra-${prefix}-`));
}
