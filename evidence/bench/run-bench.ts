// The cold-start benchmark: the built bundle under the real functions framework, against two
// references measured in the same run on the same machine: the framework serving a function that
// does nothing (the floor), and the refresher loaded from node_modules instead of the bundle.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";
import { buildFunctionBundle, functionSourceDir, repoRoot } from "../../infra/function-bundle";
import { startBitrix24Sandbox } from "../../local/bitrix24-sandbox/sandbox";
import { deliverCloudEvent } from "../../local/cloud-event";
import { startSecretManagerEmulator } from "../../local/secret-manager/emulator";
import { createSecretManagerClient } from "../../function/adapters/secret-manager-store";
import { defaultSecretNames, ensureSecrets, storeTokenPair } from "../../local/token-secrets";
import { startFunctionChild } from "./function-child";

const projectId = "bench-project";
const topic = "b24-token-refresh-trigger";
const benchRoot = path.join(repoRoot, "dist", "bench");
const loopbackGuard = path.join(repoRoot, "test", "helpers", "loopback-guard.cjs");

export type VariantName = "floor" | "unbundled" | "bundle";

export interface BenchOptions {
    /** Cold starts per variant. */
    runs: number;
    /** Warm deliveries per variant, spread over the runs. */
    warm: number;
    progress?: (line: string) => void;
}

export const benchDefaults = { runs: 5, warm: 60 } as const;

export interface VariantResult {
    name: VariantName;
    what: string;
    /** ms from spawn to the port accepting connections, one per run. */
    portOpenMs: number[];
    /** ms from spawn to the first delivery answered 204 (with a real refresh, for the refresher). */
    firstDoneMs: number[];
    /** ms per warm delivery (each a real refresh, for the refresher). */
    warmMs: number[];
    /** VmHWM of the child after its deliveries, bytes, one per run. */
    peakRssBytes: number[];
    /** What has to be deployed besides the functions framework. */
    size: { bytes: number; gzipBytes?: number; note: string };
}

export interface BenchResult {
    options: BenchOptions;
    variants: Record<VariantName, VariantResult>;
    machine: string;
    realSeconds: number;
    /** Every line the children printed. */
    lines: string[];
    /** Every token the sandbox issued and the client secret, for the no-secret check. */
    secrets: string[];
    /** Deliveries that did not answer 204 or did not refresh. */
    failures: string[];
}

export function validateBenchOptions(options: BenchOptions): string[] {
    const problems: string[] = [];
    if (!Number.isInteger(options.runs) || options.runs < 1 || options.runs > 50) problems.push(`--runs must be a whole number from 1 to 50, got ${options.runs}`);
    if (!Number.isInteger(options.warm) || options.warm < 1 || options.warm > 1000) problems.push(`--warm must be a whole number from 1 to 1000, got ${options.warm}`);
    return problems;
}

/** Files under `dir` in bytes, without nested node_modules (they are counted as packages of their own). */
function directoryBytes(dir: string): number {
    let total = 0;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.name === "node_modules") continue;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) total += directoryBytes(full);
        else if (entry.isFile()) total += fs.statSync(full).size;
    }
    return total;
}

function packageDir(name: string, from: string): string | undefined {
    for (let dir = from; ; dir = path.dirname(dir)) {
        const candidate = path.join(dir, "node_modules", name);
        if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
        if (path.dirname(dir) === dir) return undefined;
    }
}

/** node_modules an unbundled deployment needs for `packages`: their production dependency closure, on disk. */
export function dependencyClosure(packages: string[], from: string = repoRoot): { packages: number; bytes: number } {
    const seen = new Set<string>();
    const stack = packages.map((name) => ({ name, from }));
    while (stack.length > 0) {
        const { name, from: base } = stack.pop()!;
        const dir = packageDir(name, base);
        if (!dir || seen.has(dir)) continue;
        seen.add(dir);
        const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
        for (const dependency of Object.keys(manifest.dependencies ?? {})) stack.push({ name: dependency, from: dir });
    }
    let bytes = 0;
    for (const dir of seen) bytes += directoryBytes(dir);
    return { packages: seen.size, bytes };
}

const packageName = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");

interface Variant {
    name: VariantName;
    what: string;
    dir: string;
    target: string;
    refreshes: boolean;
    size: VariantResult["size"];
}

async function buildVariants(floorDir: string): Promise<Variant[]> {
    const bundle = await buildFunctionBundle(path.join(benchRoot, "bundle"));
    const bundleJs = fs.readFileSync(path.join(bundle.dir, "index.js"));

    // The same entry point, its own code bundled but every package left in node_modules. ESM, because
    // got 14 is ESM-only and Node 20 cannot require() it.
    const unbundledDir = path.join(benchRoot, "unbundled");
    fs.rmSync(unbundledDir, { recursive: true, force: true });
    fs.mkdirSync(unbundledDir, { recursive: true });
    const built = await esbuild.build({
        entryPoints: [path.join(functionSourceDir, "index.ts")],
        outfile: path.join(unbundledDir, "index.mjs"),
        bundle: true,
        packages: "external",
        platform: "node",
        format: "esm",
        target: "node20",
        metafile: true,
        logLevel: "silent",
        absWorkingDir: repoRoot,
    });
    fs.writeFileSync(path.join(unbundledDir, "package.json"), JSON.stringify({ name: "b24-token-refresh-unbundled", private: true, type: "module", main: "index.mjs" }) + "\n");
    const externals = [
        ...new Set(
            Object.values(built.metafile.outputs)
                .flatMap((output) => output.imports)
                .filter((i) => i.external && !i.path.startsWith("node:"))
                .map((i) => packageName(i.path)),
        ),
    ].filter((name) => name !== "@google-cloud/functions-framework");
    const closure = dependencyClosure(externals);
    const entryBytes = fs.statSync(path.join(unbundledDir, "index.mjs")).size;

    fs.writeFileSync(path.join(floorDir, "index.js"), "exports.noop = async () => {};\n");
    fs.writeFileSync(path.join(floorDir, "package.json"), JSON.stringify({ name: "noop", private: true, main: "index.js" }) + "\n");

    return [
        {
            name: "floor",
            what: "functions framework + a no-op CloudEvent function",
            dir: floorDir,
            target: "noop",
            refreshes: false,
            size: { bytes: fs.statSync(path.join(floorDir, "index.js")).size, note: "one line" },
        },
        {
            name: "unbundled",
            what: "the refresher loaded from node_modules (esbuild, packages external, ESM)",
            dir: unbundledDir,
            target: "refreshTokens",
            refreshes: true,
            size: { bytes: entryBytes + closure.bytes, note: `${(entryBytes / 1024).toFixed(0)} KiB entry + ${closure.packages} packages in node_modules` },
        },
        {
            name: "bundle",
            what: "dist/ bundle as `pulumi up` uploads it (minified esbuild, framework external)",
            dir: bundle.dir,
            target: "refreshTokens",
            refreshes: true,
            size: { bytes: bundleJs.length, gzipBytes: gzipSync(bundleJs).length, note: "index.js" },
        },
    ];
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
    const problems = validateBenchOptions(options);
    if (problems.length > 0) throw new RangeError(problems.join("; "));
    const started = performance.now();
    const floorDir = fs.mkdtempSync(path.join(os.tmpdir(), "b24-bench-noop-"));
    const emulator = await startSecretManagerEmulator();
    // Access tokens that live 10 minutes are always inside the 20-minute margin: every delivery refreshes.
    const sandbox = await startBitrix24Sandbox({ accessTtlSeconds: 600 });
    const client = createSecretManagerClient({ projectId, emulatorHost: emulator.host });
    const lines: string[] = [];
    const failures: string[] = [];
    const results = {} as Record<VariantName, VariantResult>;
    try {
        options.progress?.("bench: building the bundle and the unbundled reference");
        const variants = await buildVariants(floorDir);
        for (const v of variants) results[v.name] = { name: v.name, what: v.what, portOpenMs: [], firstDoneMs: [], warmMs: [], peakRssBytes: [], size: v.size };
        await ensureSecrets(client, projectId);
        await storeTokenPair(client, projectId, sandbox.authorize());
        const env = {
            PROJECT_ID: projectId,
            B24_CLIENT_ID: sandbox.clientId,
            B24_CLIENT_SECRET: sandbox.clientSecret,
            B24_OAUTH_TOKEN_URL: sandbox.tokenUrl,
            SECRET_MANAGER_EMULATOR_HOST: emulator.host,
            ACCESS_TOKEN_SECRET: defaultSecretNames.access,
            REFRESH_TOKEN_SECRET: defaultSecretNames.refresh,
        };
        let deliveries = 0;
        for (let run = 0; run < options.runs; run++) {
            const warmThisRun = Math.floor(((run + 1) * options.warm) / options.runs) - Math.floor((run * options.warm) / options.runs);
            // Rotate the order, so a burst of load on the shared machine does not always hit the same variant.
            const order = variants.map((_, i) => variants[(i + run) % variants.length]!);
            for (const variant of order) {
                const result = results[variant.name];
                const child = await startFunctionChild({ dir: variant.dir, target: variant.target, env, nodeOptions: `--require ${loopbackGuard}` });
                try {
                    const deliver = async (label: string) => {
                        const before = sandbox.refreshCount();
                        const answer = await deliverCloudEvent(child.url, { projectId, topic, id: `bench-${++deliveries}` });
                        const refreshed = sandbox.refreshCount() - before;
                        if (answer.status !== 204 || (variant.refreshes && refreshed !== 1)) {
                            failures.push(`${variant.name} ${label}: HTTP ${answer.status}, ${refreshed} refreshes`);
                        }
                    };
                    await deliver("first delivery");
                    result.portOpenMs.push(child.portOpenAt - child.spawnedAt);
                    result.firstDoneMs.push(performance.now() - child.spawnedAt);
                    for (let i = 0; i < warmThisRun; i++) {
                        const t = performance.now();
                        await deliver(`warm delivery ${i + 1}`);
                        result.warmMs.push(performance.now() - t);
                    }
                    const peak = child.peakRssBytes();
                    if (peak !== undefined) result.peakRssBytes.push(peak);
                } finally {
                    await child.stop();
                    lines.push(...child.lines);
                }
            }
            options.progress?.(`bench: run ${run + 1}/${options.runs} done, ${((performance.now() - started) / 1000).toFixed(1)} s`);
        }
    } finally {
        await client.close();
        await sandbox.stop();
        await emulator.stop();
        fs.rmSync(floorDir, { recursive: true, force: true });
    }
    const load = os.loadavg()[0]!.toFixed(1);
    return {
        options,
        variants: results,
        machine: `Node ${process.version}, ${os.cpus().length} CPUs, load average ${load}`,
        realSeconds: (performance.now() - started) / 1000,
        lines,
        secrets: [sandbox.clientSecret, ...sandbox.issuedTokens()],
        failures,
    };
}

export function median(values: number[]): number {
    return percentile(values, 50);
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
    if (values.length === 0) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
