// `moeforge build` of a heterogeneous recipe (core/build/hetero.ts plans it): fetch the
// models, check the shared tokenizer, fit the router (centroids from each expert's
// positive prompts, computed by the engine), and write the trust_remote_code repo.
import type { DependencyContainer } from 'tsyringe';
import { stringify } from 'yaml';
import { fetchHeteroModels, type HeteroBuildPlan } from '../../../core/build/hetero.js';
import type { LoadOptions } from '../../../core/model/causal-lm.js';
import { recipeToYamlObject } from '../../../core/recipe/moe-recipe.js';
import { Tokenizer } from '../../../core/tokenizer/tokenizer.js';
import { VERSION } from '../../../core/version.js';
import { fitRouter } from './fit-router.js';
import { writeHeteroRepo, type HeteroExportResult } from './write.js';

export interface HeteroBuildOptions {
  overwrite?: boolean;
  shardSizeBytes?: number;
  load?: LoadOptions;
  /** Seeds the router training (default: the recipe's seed, else 0). */
  seed?: number;
  /** Output dtype of the floating-point tensors; null/absent: as stored. */
  dtype?: 'F32' | 'F16' | 'BF16' | null;
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
  const { router, projected, report } = await fitRouter(container, plan, folders.experts, names, await Tokenizer.fromFolder(folders.base), {
    ...(options.load ? { load: options.load } : {}),
    seed: options.seed ?? plan.recipe.seed ?? 0,
  });
  const recipeYaml = `# Resolved by moeforge ${VERSION} (heterogeneous experts: router ${router.kind})\n${stringify(recipeToYamlObject(plan.recipe), { lineWidth: 0 })}`;
  return writeHeteroRepo(out, {
    experts: plan.experts.map((m, i) => ({ name: names[i]!, ref: m.ref, folder: folders.experts[i]! })),
    router,
    tokenizerFolder: folders.base,
    ...(options.shardSizeBytes !== undefined ? { shardSizeBytes: options.shardSizeBytes } : {}),
    overwrite: options.overwrite ?? false,
    recipeYaml,
    ...(projected ? { projected } : {}),
    ...(options.dtype ? { dtype: options.dtype } : {}),
    report,
  });
}
