// Builds the refresher's deployable folder: one esbuild bundle plus a package.json whose only
// dependency is the functions framework. `npm run build` and `pulumi up` both call this, so
// the folder the tests serve is byte-for-byte the folder Pulumi uploads.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as esbuild from "esbuild";

export const repoRoot = path.resolve(__dirname, "..");
export const functionSourceDir = path.join(repoRoot, "function");
export const defaultBundleDir = path.join(repoRoot, "dist", "function");

/** The Node.js major the bundle must run on: nodejs22 in Cloud Functions, Node 20 on developer machines. */
const bundleTarget = "node20";

export interface FunctionBundle {
    /** Folder holding `index.js` and `package.json`, ready to zip and upload. */
    dir: string;
    /** sha256 over the folder's files (names and bytes): changes exactly when the deployable code changes. */
    sha256: string;
    /** Sizes in bytes, for the build report. */
    files: { name: string; bytes: number }[];
}

function frameworkVersion(): string {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>;
    };
    const version = pkg.dependencies?.["@google-cloud/functions-framework"];
    if (!version) {
        throw new Error("package.json must list @google-cloud/functions-framework in dependencies: the bundle's package.json pins it");
    }
    return version;
}

/** Hash the folder's files in name order, so the result is independent of file system order. */
export function hashBundleDir(dir: string): string {
    const hash = createHash("sha256");
    for (const name of fs.readdirSync(dir).sort()) {
        hash.update(name).update("\0").update(fs.readFileSync(path.join(dir, name))).update("\0");
    }
    return hash.digest("hex");
}

export async function buildFunctionBundle(outDir: string = defaultBundleDir): Promise<FunctionBundle> {
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir, { recursive: true });
    const result = await esbuild.build({
        entryPoints: [path.join(functionSourceDir, "index.ts")],
        outfile: path.join(outDir, "index.js"),
        bundle: true,
        platform: "node",
        format: "cjs",
        target: bundleTarget,
        minify: true,
        legalComments: "none",
        sourcemap: false,
        // The framework is installed by Cloud Build from package.json and must be the very module
        // that serves the function, so it stays outside the bundle.
        external: ["@google-cloud/functions-framework"],
        logLevel: "silent",
        absWorkingDir: repoRoot,
    });
    if (result.errors.length > 0) {
        throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join("; ")}`);
    }
    const manifest = {
        name: "b24-token-refresh",
        private: true,
        main: "index.js",
        engines: { node: ">=20" },
        dependencies: { "@google-cloud/functions-framework": frameworkVersion() },
    };
    fs.writeFileSync(path.join(outDir, "package.json"), JSON.stringify(manifest, null, 2) + "\n");
    const files = fs
        .readdirSync(outDir)
        .sort()
        .map((name) => ({ name, bytes: fs.statSync(path.join(outDir, name)).size }));
    return { dir: outDir, sha256: hashBundleDir(outDir), files };
}
