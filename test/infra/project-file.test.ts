// Pulumi.yaml and Pulumi.dev.yaml as the Pulumi CLI will read them (no CLI here): the project
// schema Pulumi publishes, the rules its Go code adds on top, and agreement with the program.
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv2020 from "ajv/dist/2020";
import * as ts from "typescript";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { ciConfigKeys } from "../../infra/ci-access";
import { configDefaults, projectConfigKeys, providerConfigKeys } from "../../infra/config";
import { projectName, repoRoot } from "./helpers";

interface ConfigDeclaration {
    type?: string;
    description?: string;
    secret?: boolean;
    default?: unknown;
    value?: unknown;
}
interface ProjectFile {
    name: string;
    runtime: string | { name: string; options?: Record<string, unknown> };
    main?: string;
    config: Record<string, ConfigDeclaration>;
}

const readYaml = <T>(file: string) => parseYaml(fs.readFileSync(path.join(repoRoot, file), "utf8")) as T;
const projectFile = readYaml<ProjectFile>("Pulumi.yaml");
const devStack = readYaml<{ config: Record<string, unknown> }>("Pulumi.dev.yaml");

describe("Pulumi.yaml", () => {
    it("validates against Pulumi's project schema", () => {
        // In CI the shared folder sits next to the repository.
        const schemaPath = path.resolve(repoRoot, "../shared/schemas/pulumi-project.schema.json");
        const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8")) as object;
        const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);
        expect(validate(projectFile), JSON.stringify(validate.errors, null, 2)).toBe(true);
    });

    it("follows the rules Pulumi's Go code adds to the schema", () => {
        // sdk/go/common/workspace/project.go: keys of another namespace may not declare a type or
        // default and must carry a `value`; a key may not have both `default` and `value`.
        for (const [key, declaration] of Object.entries(projectFile.config)) {
            const namespace = key.includes(":") ? key.split(":")[0] : projectName;
            if (namespace !== projectName) {
                expect(declaration.type, key).toBeUndefined();
                expect(declaration.default, key).toBeUndefined();
                expect(declaration.value, key).toBeDefined();
            }
            expect(declaration.default !== undefined && declaration.value !== undefined, key).toBe(false);
        }
    });

    it("is the project the code reads config for", () => {
        expect(projectFile.name).toBe(projectName);
        expect(projectFile.runtime).toMatchObject({ name: "nodejs" });
    });

    it("declares the token rotation's and the CI part's keys, each typed and described", () => {
        // That the declared keys are exactly the keys the program reads is checked on a real
        // evaluation, in program.test.ts.
        expect(Object.keys(projectFile.config)).toEqual(expect.arrayContaining([...projectConfigKeys, ...ciConfigKeys]));
        for (const [key, declaration] of Object.entries(projectFile.config)) {
            // Typed like the program's default: `callback` is a boolean, everything else a string.
            const expected = key in configDefaults ? typeof configDefaults[key as keyof typeof configDefaults] : "string";
            expect(declaration.type, key).toBe(expected);
            expect(declaration.description?.length ?? 0, key).toBeGreaterThan(20);
        }
    });

    it("gives the optional keys the program's defaults and keeps the secret secret", () => {
        const defaults = Object.fromEntries(Object.keys(configDefaults).map((k) => [k, projectFile.config[k]?.default]));
        expect(defaults).toEqual(configDefaults);
        for (const key of projectConfigKeys.filter((k) => !(k in configDefaults))) expect(projectFile.config[key]?.default, key).toBeUndefined();
        expect(projectFile.config.clientSecret).toMatchObject({ secret: true });
        expect(projectFile.config.clientSecret?.default).toBeUndefined();
    });

    it("points main at infra/, whose tsconfig.json the host loads, and package.json main at the program", () => {
        expect(projectFile.main).toBe("infra");
        const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { main: string; type?: string };
        expect(pkg.main).toBe("infra/index.ts");
        expect(pkg.type ?? "commonjs").toBe("commonjs");
    });

    it("makes the host compile infra/ with the root tsconfig.json's options", () => {
        // What @pulumi/pulumi/cmd/run does from the program directory: its own defaults, then
        // ./tsconfig.json's compilerOptions on top, then ts-node parses the file (following
        // `extends`) with those as overrides.
        const infraDir = path.join(repoRoot, "infra");
        const rawOptions = (ts.parseConfigFileTextToJson("tsconfig.json", fs.readFileSync(path.join(infraDir, "tsconfig.json"), "utf8")).config as {
            compilerOptions?: Record<string, unknown>;
        }).compilerOptions;
        const hostOverrides = { target: "ES2020", module: "nodenext", moduleResolution: "nodenext", ...rawOptions };
        const parse = (dir: string, overrides: Record<string, unknown>) => {
            const file = path.join(dir, "tsconfig.json");
            const config = ts.readConfigFile(file, ts.sys.readFile).config as { compilerOptions?: object };
            config.compilerOptions = { ...config.compilerOptions, ...overrides };
            const { options, errors } = ts.parseJsonConfigFileContent(config, ts.sys, dir, undefined, file);
            expect(errors).toEqual([]);
            const { configFilePath: _ignored, ...rest } = options;
            return rest;
        };
        expect(parse(infraDir, hostOverrides)).toEqual(parse(repoRoot, {}));
    });
});

describe("Pulumi.dev.yaml", () => {
    const keys = Object.keys(devStack.config);

    it("sets only keys the project declares or the provider reads", () => {
        const known = new Set<string>([...[...projectConfigKeys, ...ciConfigKeys].map((k) => `${projectName}:${k}`), ...providerConfigKeys]);
        expect(keys.filter((k) => !known.has(k))).toEqual([]);
        for (const key of providerConfigKeys) expect(keys).toContain(key);
    });

    it("holds no client secret, plain or encrypted", () => {
        expect(keys).not.toContain(`${projectName}:clientSecret`);
        expect(JSON.stringify(devStack)).not.toMatch(/secure|encryptionsalt/i);
    });
});
