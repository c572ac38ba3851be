// Loads the program the way `pulumi up` does, which vitest's own transform would hide: a child
// process runs @pulumi/pulumi/cmd/run (ts-node with the project's typescript, type-checking on,
// cwd = Pulumi.yaml's `main`, CommonJS) against Pulumi's mock monitor. Each run uses a scratch
// copy of the project, so the bundle the program builds lands in the copy's dist/, not ours.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callbackState } from "../../function/core/authorization";
import { exampleStackConfig, plainClientSecret, plainStrings, projectName, repoRoot, tempDir } from "./helpers";

interface HostResult {
    code: number;
    cwd: string;
    ranModules: string[];
    resources: { type: string; name: string; custom: boolean; inputs: Record<string, unknown> }[];
    calls: string[];
    outputs: Record<string, unknown> | null;
}

interface Run {
    exitCode: number | null;
    stderr: string;
    result?: HostResult;
}

function copyProject(root: string): void {
    for (const file of ["Pulumi.yaml", "Pulumi.dev.yaml", "package.json", "tsconfig.json"]) fs.copyFileSync(path.join(repoRoot, file), path.join(root, file));
    for (const dir of ["infra", "function"]) fs.cpSync(path.join(repoRoot, dir), path.join(root, dir), { recursive: true });
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(root, "node_modules"), "dir");
}

/** The environment the Node language host gives the program: config as `ns:config:key`, secret keys listed. */
function hostEnvironment(overrides: Record<string, string>, typeCheck: boolean): NodeJS.ProcessEnv {
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...exampleStackConfig(), ...overrides })) {
        const [namespace, name] = key.split(":") as [string, string];
        config[`${namespace}:config:${name}`] = value;
    }
    return {
        ...process.env,
        PULUMI_CONFIG: JSON.stringify(config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify([`${projectName}:clientSecret`]),
        // Compile every file afresh, so type errors cannot hide behind ts-node's disk cache.
        TS_NODE_CACHE: "false",
        // The host's own switch (as with `pulumi up`): off only where another run already type-checks the same files.
        PULUMI_NODEJS_TRANSPILE_ONLY: typeCheck ? "false" : "true",
    };
}

function runHost(root: string, configOverrides: Record<string, string> = {}, typeCheck = true): Promise<Run> {
    const resultFile = path.join(root, "host-result.json");
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(repoRoot, "test", "infra", "host-run.cjs"), root, resultFile], {
            cwd: root,
            env: hostEnvironment(configOverrides, typeCheck),
            stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("error", reject);
        child.on("close", (exitCode) => {
            const result = fs.existsSync(resultFile) ? (JSON.parse(fs.readFileSync(resultFile, "utf8")) as HostResult) : undefined;
            resolve({ exitCode, stderr, result });
        });
    });
}

describe("the program under the Pulumi Node host", () => {
    let scratch: string;
    let good: Run;
    let broken: Run;
    let callback: Run;
    let goodRoot: string;

    beforeAll(async () => {
        scratch = tempDir("host");
        goodRoot = path.join(scratch, "good");
        const brokenRoot = path.join(scratch, "broken");
        const callbackRoot = path.join(scratch, "callback");
        for (const root of [goodRoot, brokenRoot, callbackRoot]) {
            fs.mkdirSync(root);
            copyProject(root);
        }
        // A program whose only flaw is an implicit any: an error only if the host type-checks with
        // the root tsconfig's `strict`. Small on purpose: checking against all of @pulumi/gcp's
        // typings is what makes the real program take seconds.
        fs.writeFileSync(
            path.join(brokenRoot, "infra", "index.ts"),
            'import * as pulumi from "@pulumi/pulumi";\n\nexport const project = pulumi.getProject();\n\nexport function untyped(value) {\n    return value;\n}\n',
        );
        [good, broken, callback] = await Promise.all([
            runHost(goodRoot),
            runHost(brokenRoot),
            // The good run type-checks the very same files; this one only needs to evaluate them.
            runHost(callbackRoot, { [`${projectName}:callback`]: "true" }, false),
        ]);
    }, 120_000);

    afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

    it("evaluates from Pulumi.yaml's main with the program's own modules", () => {
        expect(good.stderr).not.toMatch(/error/i);
        expect(good.exitCode).toBe(0);
        const result = good.result!;
        expect(result.code).toBe(0);
        expect(result.cwd).toBe(path.join(goodRoot, "infra"));
        const loaded = result.ranModules.map((f) => path.relative(goodRoot, f)).filter((f) => f.startsWith("infra"));
        expect(loaded).toEqual(expect.arrayContaining(["infra/index.ts", "infra/token-rotation.ts", "infra/function-bundle.ts", "infra/margin.ts"]));
        expect(result.calls).toEqual([]);
    });

    it("registers the stack, the component and its resources", () => {
        const resources = good.result!.resources;
        const types = new Set(resources.map((r) => r.type));
        for (const type of [
            "pulumi:pulumi:Stack",
            "b24-token-rotation:index:TokenRotation",
            "gcp:cloudfunctionsv2/function:Function",
            "gcp:cloudscheduler/job:Job",
            "gcp:pubsub/topic:Topic",
            "gcp:secretmanager/secret:Secret",
            "gcp:projects/iAMCustomRole:IAMCustomRole",
            "gcp:monitoring/alertPolicy:AlertPolicy",
        ]) {
            expect(types, type).toContain(type);
        }
        const fn = resources.find((r) => r.type === "gcp:cloudfunctionsv2/function:Function")!;
        expect(fn.inputs).toMatchObject({ name: "b24-token-refresh", buildConfig: { runtime: "nodejs22", entryPoint: "refreshTokens" } });
    });

    it("builds the bundle itself and uploads it under its hash", () => {
        expect(fs.readdirSync(path.join(goodRoot, "dist", "function")).sort()).toEqual(["index.js", "package.json"]);
        const object = good.result!.resources.find((r) => r.type === "gcp:storage/bucketObject:BucketObject")!;
        expect(object.inputs.name).toMatch(/^b24-token-refresh\/[0-9a-f]{64}\.zip$/);
    });

    it("produces the stack outputs, with the client secret nowhere in plain text", () => {
        expect(good.result!.outputs).toMatchObject({
            functionName: "b24-token-refresh",
            topicName: "b24-token-refresh-trigger",
            schedulerJobName: "b24-token-refresh-job",
            authorizeUrl: "https://example.bitrix24.com/oauth/authorize/?client_id=local.0123456789abcd.01234567&response_type=code",
        });
        expect(JSON.stringify(good.result!.outputs)).not.toContain(plainClientSecret);
        for (const r of good.result!.resources) expect(plainStrings(r.inputs).filter((s) => s.includes(plainClientSecret)), r.name).toEqual([]);
    });

    it("evaluates with the OAuth callback on: its function, its public invoker, a secret authorize URL", () => {
        expect(callback.stderr).not.toMatch(/error/i);
        expect(callback.exitCode).toBe(0);
        const resources = callback.result!.resources;
        const fn = resources.find((r) => r.type === "gcp:cloudfunctionsv2/function:Function" && r.inputs.name === "b24-oauth-callback")!;
        expect(fn.inputs).toMatchObject({ buildConfig: { runtime: "nodejs22", entryPoint: "oauthCallback" }, serviceConfig: { ingressSettings: "ALLOW_ALL" } });
        expect(resources.filter((r) => JSON.stringify(r.inputs).includes("allUsers")).map((r) => [r.type, r.inputs.name])).toEqual([
            ["gcp:cloudrunv2/serviceIamMember:ServiceIamMember", "b24-oauth-callback"],
        ]);
        const outputs = callback.result!.outputs!;
        const state = callbackState({ clientId: "local.0123456789abcd.01234567", clientSecret: plainClientSecret, portalDomain: "example.bitrix24.com" });
        expect(JSON.stringify(outputs.authorizeUrl)).toContain(`&state=${state}`);
        expect(plainStrings(outputs).filter((s) => s.includes(state) || s.includes(plainClientSecret))).toEqual([]);
    });

    it("type-checks with the root tsconfig's strict options", () => {
        expect(broken.exitCode).not.toBe(0);
        expect(broken.stderr).toContain("Unable to compile TypeScript");
        expect(broken.stderr).toMatch(/index\.ts\(\d+,\d+\): error TS7006/);
    });
});
