// `npm run build`: writes dist/function/ (what `pulumi up` uploads) and prints its size.
import { buildFunctionBundle } from "../infra/function-bundle";

async function main(): Promise<void> {
    const started = Date.now();
    const bundle = await buildFunctionBundle();
    const total = bundle.files.reduce((sum, f) => sum + f.bytes, 0);
    for (const f of bundle.files) {
        console.log(`  ${f.name.padEnd(14)} ${(f.bytes / 1024).toFixed(1).padStart(8)} KiB`);
    }
    console.log(
        `built ${bundle.dir}: ${(total / 1024 / 1024).toFixed(2)} MiB, sha256 ${bundle.sha256.slice(0, 12)}, ${Date.now() - started} ms`,
    );
}

main().catch((error: unknown) => {
    console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
});
