// The consumer as other services get it: `b24-token-rotation/consumer` through package.json's
// `exports`, without Pulumi, while the package root stays the Pulumi program.
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { expectNoSecrets } from "../helpers/no-secrets";
import { runChild, tsxBin } from "../helpers/run-child";
import { repoRoot } from "../helpers/system";
import { projectId, startConsumerWorld } from "./harness";

const packageJson = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
    name: string;
    main: string;
    exports: Record<string, string | Record<string, string>>;
};
const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Bare module specifiers reachable from `entry` through relative imports (static and dynamic). */
function bareImports(entry: string, seen = new Set<string>(), bare = new Set<string>()): Set<string> {
    if (seen.has(entry)) return bare;
    seen.add(entry);
    const source = fs.readFileSync(entry, "utf8");
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\b(?:[^"'`;]*?\bfrom\s*)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g)) {
        const specifier = match[1] ?? match[2]!;
        if (specifier.startsWith(".")) {
            const resolved = path.resolve(path.dirname(entry), specifier);
            bareImports(fs.existsSync(`${resolved}.ts`) ? `${resolved}.ts` : path.join(resolved, "index.ts"), seen, bare);
        } else if (!specifier.startsWith("node:")) {
            bare.add(specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/"));
        }
    }
    return bare;
}

describe("package exports", () => {
    it("resolves the consumer subpath to consumer/ and the package root to the Pulumi program", () => {
        const requireHere = createRequire(path.join(repoRoot, "package.json"));
        expect(requireHere.resolve(`${packageJson.name}/consumer`)).toBe(path.join(repoRoot, "consumer", "index.ts"));
        expect(requireHere.resolve(packageJson.name)).toBe(path.join(repoRoot, "infra", "index.ts"));
    });

    it("keeps Pulumi's entry point: with `main: <folder>` in Pulumi.yaml, the Node host takes exports['.'], which is package.json's main", () => {
        // @pulumi/pulumi/cmd/run/run.js: no program file given (Pulumi.yaml's `main` is a folder) →
        // exports (string, or exports["."]) wins over `main`; so both must name the same file.
        const project = parseYaml(fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8")) as { main?: string };
        const programDir = path.join(repoRoot, project.main ?? ".");
        expect(fs.statSync(programDir).isDirectory()).toBe(true);
        const dot = packageJson.exports["."];
        expect(typeof dot).toBe("string");
        expect(path.resolve(repoRoot, dot as string)).toBe(path.resolve(repoRoot, packageJson.main));
        expect(fs.existsSync(path.resolve(repoRoot, dot as string))).toBe(true);
    });

    it("the consumer depends on Secret Manager and got only, never on Pulumi", () => {
        expect([...bareImports(path.join(repoRoot, "consumer", "index.ts"))].sort()).toEqual(["@google-cloud/secret-manager", "google-gax", "got"]);
    });

    it("an installed copy is importable by name from another service's ESM code and reads the token", async () => {
        const world = await startConsumerWorld();
        try {
            const { accessToken } = await world.authorize();
            // Another service, with this package installed (linked) under node_modules.
            const service = fs.mkdtempSync(path.join(os.tmpdir(), "b24-consumer-service-"));
            scratch.push(service);
            fs.mkdirSync(path.join(service, "node_modules"));
            fs.symlinkSync(repoRoot, path.join(service, "node_modules", packageJson.name), "dir");
            fs.writeFileSync(
                path.join(service, "service.mts"),
                [
                    `import { createB24Client, Bitrix24Error } from "${packageJson.name}/consumer";`,
                    `const b24 = createB24Client({ projectId: "${projectId}", clientEndpoint: "${world.clientEndpoint}" });`,
                    `const { result } = await b24.call("user.current");`,
                    `const token = await b24.getAccessToken();`,
                    `console.log(JSON.stringify({ id: result.ID, sameToken: token === process.env.EXPECTED, errors: typeof Bitrix24Error }));`,
                    `await b24.close();`,
                ].join("\n"),
            );
            const { code, out, err } = await runChild([tsxBin, "service.mts"], {
                cwd: service,
                env: { SECRET_MANAGER_EMULATOR_HOST: world.emulator.host, EXPECTED: accessToken },
            });
            expect(err).toBe("");
            expect(code).toBe(0);
            expect(JSON.parse(out)).toEqual({ id: "1", sameToken: true, errors: "function" });
            expectNoSecrets([out, err], world.secretValues());
        } finally {
            await world.stop();
        }
    });
});
