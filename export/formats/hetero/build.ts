// `moeforge build` of a heterogeneous recipe (core/build/hetero.ts plans it): fetch the
// models, check the shared tokenizer, fit the router (centroids from each expert's
// positive prompts, computed by the engine), and write the trust_remote_code repo.
import type { DependencyContainer } from 'tsyringe';
import { stringify } from 'yaml';
import { fetchHeteroModels, formatHeteroPlan, type HeteroBuildPlan } from '../../../core/build/hetero.js';
import { MoeforgeError } from '../../../core/errors.js';
import { parseByteSize } from '../../../core/fs/atomic.js';
import { formatBytes } from '../../../core/inspect.js';
import { fitCentroids } from '../../../core/hetero/centroids.js';
import type { SequenceRouterSpec } from '../../../core/hetero/router.js';
import { CausalLM, type LoadOptions } from '../../../core/model/causal-lm.js';
import { recipeToYamlObject } from '../../../core/recipe/moe-recipe.js';
import { Tokenizer } from '../../../core/tokenizer/tokenizer.js';
import { VERSION } from '../../../core/version.js';
import { writeHeteroRepo, type HeteroExportResult } from './write.js';

export interface HeteroBuildOptions {
  overwrite?: boolean;
  shardSizeBytes?: number;
  load?: LoadOptions;
}

/** Expert display names: the last path component of each reference, made unique. */
export function expertNames(refs: string[]): string[] {
  const base = refs.map((r) => r.replace(/[\\/]+$/, '').split(/[\\/]/).pop()!.replace(/@.*$/, '') || r);
  return base.map((n, i) => (base.indexOf(n) === i && base.lastIndexOf(n) === i ? n : `${n}#${i}`));
}

export async function buildHetero(container: DependencyContainer, plan: HeteroBuildPlan, out: string, options: HeteroBuildOptions = {}): Promise<HeteroExportResult> {
  const folders = await fetchHeteroModels(container, plan);
  const refs = plan.experts.map((m) => m.ref);
  const names = expertNames(refs);
  const router: SequenceRouterSpec = { ...plan.router };
  if (router.kind === 'centroid') {
    const tokenizer = await Tokenizer.fromFolder(folders.base);
    const prompts = plan.recipe.experts.map((e) => (e.positivePrompts ?? []).map((p) => tokenizer.encode(p, { addSpecialTokens: true })));
    // One expert at a time: peak memory is the largest expert, not their sum.
    router.centroids = [];
    for (const [e, f] of folders.experts.entries()) {
      const model = await CausalLM.load(f, options.load);
      try {
        router.centroids.push(...(await fitCentroids([model], [prompts[e]!], [names[e]!])));
      } finally {
        model.dispose();
      }
    }
  }
  const recipeYaml = `# Resolved by moeforge ${VERSION} (heterogeneous experts: router ${router.kind})\n${stringify(recipeToYamlObject(plan.recipe), { lineWidth: 0 })}`;
  return writeHeteroRepo(out, {
    experts: plan.experts.map((m, i) => ({ name: names[i]!, ref: m.ref, folder: folders.experts[i]! })),
    router,
    tokenizerFolder: folders.base,
    ...(options.shardSizeBytes !== undefined ? { shardSizeBytes: options.shardSizeBytes } : {}),
    overwrite: options.overwrite ?? false,
    recipeYaml,
  });
}

/** The `moeforge build` options the heterogeneous path reads (cli/commands/build.ts BuildCommandOptions). */
export interface HeteroCliOptions {
  out?: string;
  dryRun?: boolean;
  shardSize?: string;
  overwrite?: boolean;
  quiet?: boolean;
  push?: string;
}

/** What `moeforge build` does with a heterogeneous recipe: the dry-run text, or the build and its summary line. */
export async function runHeteroBuild(container: DependencyContainer, plan: HeteroBuildPlan, opts: HeteroCliOptions): Promise<void> {
  if (opts.dryRun) {
    process.stdout.write(formatHeteroPlan(plan));
    return;
  }
  if (opts.push !== undefined) {
    throw new MoeforgeError('invalid_argument', 'build --push is not wired for heterogeneous MoEs yet: build, then `moeforge push <folder> <repo>`', { path: '--push' });
  }
  const t0 = performance.now();
  const r = await buildHetero(container, plan, opts.out!, {
    overwrite: opts.overwrite ?? false,
    ...(opts.shardSize ? { shardSizeBytes: parseByteSize(opts.shardSize) } : {}),
  });
  if (!opts.quiet) {
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    process.stdout.write(
      `built moeforge_hetero (${plan.experts.length} experts kept whole, router ${plan.router.kind}, top ${plan.router.topK} per sequence) in ${r.out}: ${r.tensors} tensors, ${formatBytes(r.bytes)} in ${r.shards} shard(s), ${s} s\n`,
    );
  }
}
