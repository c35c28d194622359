// `moeforge merge <config.yml> --out <folder>`: a dense merge from a mergekit-yaml config
// (linear, task_arithmetic, ties, dare_*, breadcrumbs*, della*, slerp, model_stock, neuro).
// Thin: parse options, build the container, call core/merge, print.
import 'reflect-metadata';
import type { Command } from 'commander';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { MoeforgeError } from '../../core/errors.js';
import { parseByteSize } from '../../core/fs/atomic.js';
import { describePlan, executeMerge, prepareMerge } from '../../core/merge/execute.js';
import { TOKENS, type MergeMethod } from '../../core/plugins.js';
import { closeMergeWorkers, setMergeThreads } from '../../experts/methods/pool.js';
import { layerEnhancer } from '../../experts/importance/enhance.js';
import { registerMergeMethods } from '../../experts/methods/register.js';
import { registerExpertSources } from '../../experts/sources/register.js';

export interface MergeCommandOptions {
  out?: string;
  dryRun?: boolean;
  overwrite?: boolean;
  shardSize?: string;
  chunkSize?: string;
  seed?: string;
  threads?: string;
  quiet?: boolean;
}

function mergeContainer(): DependencyContainer {
  const c = rootContainer.createChildContainer();
  registerExpertSources(c);
  registerMergeMethods(c);
  return c;
}

function wholeNumber(s: string | undefined, flag: string, min: number): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < min) {
    throw new MoeforgeError('invalid_argument', `"${s}" is not a whole number >= ${min}`, { path: flag });
  }
  return n;
}

export async function runMerge(configPath: string, opts: MergeCommandOptions): Promise<void> {
  if (!opts.dryRun && !opts.out) {
    throw new MoeforgeError('invalid_argument', 'give the output folder with --out <folder> (or use --dry-run)', { path: '--out' });
  }
  const c = mergeContainer();
  const prepared = await prepareMerge({
    configPath,
    methods: c.resolveAll<MergeMethod>(TOKENS.MergeMethod),
    container: c,
    shardSizeBytes: parseByteSize(opts.shardSize ?? '5GB'),
    chunkSize: wholeNumber(opts.chunkSize, '--chunk-size', 1),
    seed: wholeNumber(opts.seed, '--seed', 0),
    enhancer: layerEnhancer,
  });
  setMergeThreads(wholeNumber(opts.threads, '--threads', 1) ?? 1);
  try {
    if (opts.dryRun) {
      process.stdout.write(`${describePlan(prepared)}\n`);
      return;
    }
    for (const n of prepared.notes) process.stderr.write(`note: ${n}\n`);
    const tty = process.stderr.isTTY && !opts.quiet;
    const started = Date.now();
    await executeMerge(prepared, opts.out!, {
      overwrite: opts.overwrite,
      onNote: opts.quiet ? undefined : (n) => process.stderr.write(`note: ${n}\n`),
      onProgress: tty
        ? (e) => process.stderr.write(`\r${e.index}/${e.total} tensors, ${Math.round((100 * e.bytesWritten) / Math.max(1, e.totalBytes))}%   `)
        : undefined,
    });
    if (tty) process.stderr.write('\n');
    if (!opts.quiet) {
      process.stdout.write(
        `wrote ${opts.out} (${prepared.plan.tensors.length} tensors, ${prepared.plan.shards.length} shard${prepared.plan.shards.length === 1 ? '' : 's'}, ${prepared.plan.method.name}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    }
  } finally {
    setMergeThreads(1);
    await closeMergeWorkers();
    await prepared.close();
  }
}

export function register(program: Command): void {
  program
    .command('merge')
    .description('merge dense models with a mergekit-yaml config (ties, dare_ties, slerp, model_stock, …)')
    .argument('<config>', 'mergekit-yaml config file')
    .option('-o, --out <folder>', 'output folder (created atomically)')
    .option('--dry-run', 'print the plan (tensors, bytes, shards, peak memory) and write nothing')
    .option('--overwrite', 'replace an existing output folder')
    .option('--shard-size <size>', 'largest output shard, e.g. 2GB', '5GB')
    .option('--chunk-size <elements>', 'elements per streamed chunk (memory ≈ chunk × models)')
    .option('--seed <n>', 'seed for DARE / DELLA when the config has no random_seed')
    .option('--threads <n>', 'worker threads for the task-vector kernels on large tensors (same bytes as 1)', '1')
    .option('-q, --quiet', 'print nothing on success')
    .action(async (config: string, opts: MergeCommandOptions) => {
      await runMerge(config, opts);
    });
}
