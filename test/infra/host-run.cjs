// Runs the Pulumi program through the Node language host's real entry point,
// `@pulumi/pulumi/cmd/run`, as `pulumi preview` starts it, with Pulumi's mock monitor in place of
// the engine. That entry registers ts-node with the project's typescript and the tsconfig.json of
// the program directory (type-checking on), chdirs to Pulumi.yaml's `main`, resolves the program
// through package.json's "main" and requires it inside a Stack resource. Config arrives as the
// language host passes it: PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS (set by the parent test).
//
// usage: node host-run.cjs <project root> <result.json>
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const [projectRoot, resultFile] = process.argv.slice(2);
if (!projectRoot || !resultFile) {
    console.error("usage: node host-run.cjs <project root> <result.json>");
    process.exit(2);
}
const requireFromProject = (id) => require(require.resolve(id, { paths: [projectRoot] }));
const yaml = requireFromProject("yaml");
const pulumi = requireFromProject("@pulumi/pulumi");

const project = yaml.parse(fs.readFileSync(path.join(projectRoot, "Pulumi.yaml"), "utf8"));
const resources = [];
const calls = [];

pulumi.runtime.setMocks(
    {
        newResource(args) {
            resources.push({ type: args.type, name: args.name, custom: args.custom !== false, inputs: args.inputs });
            return { id: `${args.name}-id`, state: args.inputs };
        },
        call(args) {
            calls.push(args.token);
            throw new Error(`unexpected call ${args.token}`);
        },
    },
    project.name,
    "dev",
    true,
);
const monitor = pulumi.runtime.getMonitor();
// The engine's end-of-run handshake; the mock monitor lacks it.
monitor.signalAndWaitForShutdown = (_req, callback) => callback(null, {});

process.on("exit", (code) => {
    const stack = [...monitor.getRegisteredResources().values()].find((r) => r.urn.includes("::pulumi:pulumi:Stack::"));
    const state = stack && typeof stack.state?.toJavaScript === "function" ? stack.state.toJavaScript() : stack?.state;
    fs.writeFileSync(
        resultFile,
        JSON.stringify({ code, cwd: process.cwd(), ranModules: Object.keys(require.cache).filter((f) => f.includes(`${path.sep}infra${path.sep}`)), resources, calls, outputs: state ?? null }, null, 2),
    );
});

// The language host's command line for `main: infra`: --pwd is the program directory and the
// program is "." (getPwdMain in pulumi/pulumi pkg/engine/project.go), so run() falls back to
// package.json's "main".
process.env.PULUMI_NODEJS_TYPESCRIPT = "true";
process.argv = [
    process.argv[0],
    require.resolve("@pulumi/pulumi/cmd/run", { paths: [projectRoot] }),
    "--monitor=mock",
    `--project=${project.name}`,
    "--stack=dev",
    "--dry-run",
    `--pwd=${path.join(projectRoot, project.main ?? ".")}`,
    ".",
];
requireFromProject("@pulumi/pulumi/cmd/run");
