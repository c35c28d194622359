// `moeforge build <recipe.yml> --out <folder>`: a mergekit-moe recipe (or a moeforge
// one) into a Mixtral / Qwen2-MoE / Qwen3-MoE folder, or a heterogeneous MoE repo when
// the experts' architectures differ; `--push` uploads either. Thin: parse options, take the
// container from the composition root (index.ts createContainer), call core/build, print.
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { buildMoe, planFromRecipe, readRecipeFile, type BuildOutcome } from '../../core/build/build.js';
import { formatPlan } from '../../core/build/dry-run.js';
import { layerEnhancer } from '../../experts/importance/enhance.js';
import { MoeforgeError } from '../../core/errors.js';
import { parseByteSize } from '../../core/fs/atomic.js';
import { formatBytes } from '../../core/inspect.js';
import { hubEnv } from '../../core/hub/env.js';
import { isHubRepoId } from '../../core/hub/model-ref.js';
import { createContainer } from '../../index.js';
import { detectHeteroRecipe, formatHeteroPlan, heteroDtype } from '../../core/build/hetero.js';
import { runPush } from './push.js';

export interface BuildCommandOptions {
  out?: string;
  dryRun?: boolean;
  seed?: string;
  shardSize?: string;
  dtype?: string;
  quiet?: boolean;
  overwrite?: boolean;
  allowIdenticalExperts?: boolean;
  maxMemory?: string;
  push?: string;
  private?: boolean;
}

function parseSeed(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new MoeforgeError('invalid_argument', `"${s}" is not a whole number >= 0`, { path: '--seed' });
  return Number(s);
}

/** The build's report lines and one summary line (stdout; warnings on stderr). */
function printSummary(built: BuildOutcome, seconds: number): void {
  if (built.kind === 'hetero') {
    const { plan, result } = built;
    for (const line of result.report) process.stdout.write(`router ${line}\n`);
    process.stdout.write(
      `built moeforge_hetero (${plan.experts.length} experts ${plan.form === 'projected' ? 'in the projected form' : 'kept whole'}, router ${plan.router.kind}, top ${plan.router.topK} per sequence) in ${result.out}: ${result.tensors} tensors, ${formatBytes(result.bytes)} in ${result.shards} shard(s), ${seconds.toFixed(1)} s\n`,
    );
    return;
  }
  const { plan, result } = built;
  for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const line of result.gateReport) process.stdout.write(`gate ${line}\n`);
  process.stdout.write(
    `built ${plan.format.name} (${plan.recipe.experts.length} experts, gate ${plan.gate.mode}) in ${result.out}: ${result.tensors} tensors, ${formatBytes(result.bytes)} in ${result.shards} shard(s), ${result.seconds.toFixed(1)} s\n`,
  );
}

export async function runBuild(recipeFile: string, opts: BuildCommandOptions): Promise<void> {
  const c = createContainer();
  if (!opts.dryRun && !opts.out) throw new MoeforgeError('invalid_argument', 'give the output folder with --out <folder> (or use --dry-run)', { path: '--out' });
  // A push target that cannot work is refused before hours of building, not after.
  if (opts.push !== undefined && !opts.dryRun) {
    if (!isHubRepoId(opts.push) || !opts.push.includes('/')) throw new MoeforgeError('invalid_argument', 'expected a Hub repo id org/name', { path: '--push' });
    if (!hubEnv().token) throw new MoeforgeError('hub_unauthorized', 'pushing needs a token with write access (set HF_TOKEN or run huggingface-cli login)', { path: '--push' });
  }
  const recipe = await readRecipeFile(c, recipeFile, { allowIdenticalExperts: opts.allowIdenticalExperts ?? false });
  // Experts of other architectures or sizes than the base: a heterogeneous MoE (issue 9, core/build/hetero.ts).
  // Detected once here and handed to buildMoe, which builds both kinds (the library path).
  const hetero = (await detectHeteroRecipe(c, recipe)) ?? null;
  const planOptions = {
    seed: parseSeed(opts.seed),
    shardSize: opts.shardSize,
    dtype: opts.dtype,
    maxResidentBytes: opts.maxMemory ? parseByteSize(opts.maxMemory) : undefined,
  };
  if (opts.dryRun) {
    const heteroPlan = hetero && opts.dtype !== undefined ? { ...hetero, dtype: heteroDtype(opts.dtype, '--dtype') } : hetero;
    process.stdout.write(heteroPlan ? formatHeteroPlan(heteroPlan) : formatPlan(await planFromRecipe(c, recipe, planOptions)));
    return;
  }
  const showBar = !opts.quiet && process.stderr.isTTY === true;
  const bar = showBar
    ? new SingleBar({ format: 'building {bar} {percentage}% | {done}/{all} | {speed}/s | ETA {eta_formatted}', stream: process.stderr, hideCursor: true })
    : undefined;
  const t0 = performance.now();
  let started = false;
  try {
    const built = await buildMoe(c, recipe, opts.out!, {
      ...planOptions,
      heteroPlan: hetero,
      enhancer: layerEnhancer,
      onNote: (line) => process.stderr.write(`note: ${line}\n`),
      overwrite: opts.overwrite ?? false,
      onProgress: (p) => {
        if (!bar) return;
        if (!started) {
          bar.start(p.totalBytes, 0, { done: '0 B', all: formatBytes(p.totalBytes), speed: '0 B' });
          started = true;
        }
        const s = (performance.now() - t0) / 1000;
        bar.update(p.bytesWritten, { done: formatBytes(p.bytesWritten), all: formatBytes(p.totalBytes), speed: formatBytes(p.bytesWritten / Math.max(s, 1e-3)) });
      },
    });
    bar?.stop();
    if (!opts.quiet) printSummary(built, (performance.now() - t0) / 1000);
  } catch (e) {
    bar?.stop();
    throw e;
  }
  if (opts.push !== undefined) await runPush(opts.out!, opts.push, { private: opts.private ?? false });
}

export function register(program: Command): void {
  program
    .command('build')
    .description('build a mixture of experts from a mergekit-moe (or moeforge) recipe; experts of other architectures or sizes give a heterogeneous MoE (trust_remote_code repo)')
    .argument('<recipe>', 'recipe YAML file')
    .option('--out <folder>', 'output folder (written atomically: nothing appears unless the build completes)')
    .option('--dry-run', 'print the plan (format, tensors, bytes, shards, gate computation, peak memory) and write nothing')
    .option('--seed <n>', 'seed for every random choice (random gates, noise_scale, DARE drops); default the recipe seed, else 0')
    .option('--shard-size <size>', 'largest output shard, e.g. 2GB, 500MB, 5GiB (default 5GB)')
    .option('--dtype <dtype>', 'output dtype: float32, float16 or bfloat16 (default the recipe dtype, else the base model)')
    .option('--max-memory <size>', 'float32 weight bytes the gate computation may hold; above it the base model is streamed layer by layer (default 2GiB)')
    .option('--overwrite', 'replace an existing output folder')
    .option('--allow-identical-experts', "allow every expert to be the same model (mergekit's --i-understand-this-is-not-useful-without-training)")
    .option('--push <org/name>', 'upload the result to this Hub repo when the build succeeds (needs HF_TOKEN)')
    .option('--private', 'with --push: create the repo as private')
    .option('--quiet', 'no progress bar and no summary line')
    .addHelpText('after', '\nExamples:\n  $ moeforge build recipe.yml --out ./my-moe --dry-run\n  $ moeforge build recipe.yml --out ./my-moe --seed 1 --dtype bfloat16 --push my-org/my-moe')
    .action(async (recipe: string, opts: BuildCommandOptions) => {
      await runBuild(recipe, opts);
    });
}
