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

/** Hash the files in name order, so the result is independent of file system order. */
function hashFiles(files: ReadonlyMap<string, string | Uint8Array>): string {
    const hash = createHash("sha256");
    for (const name of [...files.keys()].sort()) hash.update(name).update("\0").update(files.get(name)!).update("\0");
    return hash.digest("hex");
}

/** The hash of a built folder, as `buildFunctionBundle` reports it. */
export function hashBundleDir(dir: string): string {
    const files = new Map<string, Uint8Array>();
    for (const name of fs.readdirSync(dir)) if (!name.endsWith(".tmp")) files.set(name, fs.readFileSync(path.join(dir, name)));
    return hashFiles(files);
}

/** Replaces a file in one step, so a process reading the folder meanwhile sees the old or the new file, never half of one. */
function writeFileAtomic(file: string, contents: string | Uint8Array): void {
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, contents);
    fs.renameSync(temporary, file);
}

export async function buildFunctionBundle(outDir: string = defaultBundleDir, sourceDir: string = functionSourceDir): Promise<FunctionBundle> {
    fs.mkdirSync(outDir, { recursive: true });
    const result = await esbuild.build({
        entryPoints: [path.join(sourceDir, "index.ts")],
        outfile: path.join(outDir, "index.js"),
        write: false,
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
    const wanted = new Map<string, string | Uint8Array>([["package.json", JSON.stringify(manifest, null, 2) + "\n"]]);
    for (const file of result.outputFiles) wanted.set(path.basename(file.path), file.contents);
    // Files are replaced in place (not by emptying the folder first): a function served from this
    // folder by another process keeps working while it is rebuilt.
    for (const name of fs.readdirSync(outDir)) if (!wanted.has(name)) fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
    for (const [name, contents] of wanted) writeFileAtomic(path.join(outDir, name), contents);
    const files = [...wanted.keys()].sort().map((name) => ({ name, bytes: fs.statSync(path.join(outDir, name)).size }));
    return { dir: outDir, sha256: hashFiles(wanted), files };
}
