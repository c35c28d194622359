// `moeforge build` as a library call: read and validate the recipe, describe and
// check the models, plan, and (unless dry-run) execute. Every plugin comes from the
// container (expert sources, gate strategies, output formats, merge methods, and the
// heterogeneous builder, which lives in export/ and which core cannot import).
import { readFile } from 'node:fs/promises';
import type { DependencyContainer } from 'tsyringe';
import { MoeforgeError, fsError } from '../errors.js';
import { parseByteSize } from '../fs/atomic.js';
import { TOKENS, type GateStrategy, type HeteroBuildResult, type HeteroBuilder, type ModelEnhancer } from '../plugins.js';
import { fetchModel } from '../sources.js';
import { parseMoeRecipe, type MoeRecipe } from '../recipe/moe-recipe.js';
import { executeBuild, type BuildResult, type ExecuteOptions } from './executor.js';
import { detectHeteroRecipe, heteroDtype, type HeteroBuildPlan } from './hetero.js';
import { describeInputs, type BuildInputs } from './inputs.js';
import { planBuild, type BuildPlan, type PlanOptions } from './plan.js';

export interface BuildOptions extends PlanOptions, Omit<ExecuteOptions, 'out'> {
  /** mergekit's --i-understand-this-is-not-useful-without-training. */
  allowIdenticalExperts?: boolean;
  /** Runs the experts' `enhance:` (issue 10), from the composition root (core never imports experts/). */
  enhancer?: ModelEnhancer;
  /** Lines for the user (the kept layers of each enhanced expert). */
  onNote?: (line: string) => void;
  /**
   * What detectHeteroRecipe already returned for this recipe (null: homogeneous), so a
   * caller that printed the plan (the CLI's --dry-run check) does not describe the models twice.
   */
  heteroPlan?: HeteroBuildPlan | null;
}

/** A Mixtral / Qwen-MoE build: the plan and what the executor wrote. */
export interface MoeBuildOutcome {
  kind: 'moe';
  plan: BuildPlan;
  result: BuildResult;
}

/** A heterogeneous build (experts of other architectures, issue 9): its plan and what the builder wrote. */
export interface HeteroBuildOutcome {
  kind: 'hetero';
  plan: HeteroBuildPlan;
  result: HeteroBuildResult;
}

export type BuildOutcome = MoeBuildOutcome | HeteroBuildOutcome;

export async function readRecipeFile(container: DependencyContainer, file: string, options: { allowIdenticalExperts?: boolean } = {}): Promise<MoeRecipe> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, file, 'read the recipe');
  }
  return parseRecipeText(container, text, file, options);
}

export function parseRecipeText(container: DependencyContainer, text: string, label: string, options: { allowIdenticalExperts?: boolean } = {}): MoeRecipe {
  const strategies = container.isRegistered(TOKENS.GateStrategy, true) ? container.resolveAll<GateStrategy>(TOKENS.GateStrategy) : [];
  return parseMoeRecipe(text, label, {
    gateModes: strategies.map((s) => s.name),
    promptlessGateModes: strategies.filter((s) => !s.needsPrompts).map((s) => s.name),
    allowIdenticalExperts: options.allowIdenticalExperts ?? false,
  });
}

/** Describes the models, checks them and plans the build; reads no weights. */
export async function planFromRecipe(container: DependencyContainer, recipe: MoeRecipe, options: PlanOptions = {}): Promise<BuildPlan> {
  const inputs = await describeInputs(container, recipe);
  return planBuild(container, recipe, inputs, options);
}

/** Per model index, the layers the experts' `enhance:` reverts to the base (undefined when no expert asks). */
async function enhanceExperts(container: DependencyContainer, recipe: MoeRecipe, inputs: BuildInputs, options: BuildOptions): Promise<Map<number, Set<number>> | undefined> {
  const asked = recipe.experts.flatMap((e, i) => (e.enhance ? [{ e, i, enhance: e.enhance }] : []));
  if (asked.length === 0) return undefined;
  if (!options.enhancer) throw new MoeforgeError('invalid_recipe', 'enhance needs the expert enhancer (experts/importance/enhance.ts) passed to buildMoe', { path: `experts[${asked[0]!.i}].enhance` });
  const baseFolder = (await fetchModel(container, inputs.base.ref)).folder;
  const out = new Map<number, Set<number>>();
  for (const { i, enhance } of asked) {
    const model = inputs.experts[i]!;
    const layers = await options.enhancer.revertedLayers({
      baseFolder,
      folder: (await fetchModel(container, model.ref)).folder,
      ref: model.ref,
      templateFolder: baseFolder,
      params: {
        enhance_threshold: enhance.threshold ?? undefined,
        enhance_keep: enhance.keep ?? undefined,
        calibration: enhance.calibration,
        calibration_samples: enhance.samples ?? undefined,
        calibration_seq_len: enhance.seqLen ?? undefined,
        calibration_seed: enhance.seed ?? undefined,
      },
      where: `experts[${i}].enhance.`,
      configDir: process.cwd(),
      note: (line) => options.onNote?.(line),
    });
    const set = out.get(model.index) ?? new Set<number>();
    for (const l of layers) set.add(l);
    out.set(model.index, set);
  }
  return out;
}

/** --shard-size, else the recipe's shard_size, in bytes; undefined leaves the writer's default (as the homogeneous plan does). */
function heteroShardSize(v: string | number | undefined): number | undefined {
  if (typeof v === 'string') return parseByteSize(v);
  if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new MoeforgeError('invalid_argument', `shard size ${v} is not a positive number of bytes`, { path: 'shard_size' });
  return v;
}

/** Writes a heterogeneous MoE through the registered HeteroBuilder (export/formats/hetero). */
export async function buildHeteroMoe(container: DependencyContainer, plan: HeteroBuildPlan, out: string, options: Pick<BuildOptions, 'overwrite' | 'shardSize' | 'seed' | 'dtype'> = {}): Promise<HeteroBuildResult> {
  if (!container.isRegistered(TOKENS.HeteroBuilder, true)) {
    throw new MoeforgeError('invalid_argument', 'this recipe needs the heterogeneous builder: use a container from createContainer() (index.ts), which registers it', { path: 'experts' });
  }
  const shardSizeBytes = heteroShardSize(options.shardSize ?? plan.recipe.shardSize ?? undefined);
  return container.resolve<HeteroBuilder>(TOKENS.HeteroBuilder).build(container, plan, out, {
    overwrite: options.overwrite ?? false,
    ...(shardSizeBytes !== undefined ? { shardSizeBytes } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    dtype: options.dtype !== undefined ? heteroDtype(options.dtype, '--dtype') : plan.dtype,
  });
}

/**
 * Builds the recipe: a Mixtral / Qwen-MoE folder, or, when some expert differs from the
 * base in architecture (detectHeteroRecipe), a heterogeneous MoE repo. Check `kind`.
 */
export async function buildMoe(container: DependencyContainer, recipe: MoeRecipe, out: string, options: BuildOptions = {}): Promise<BuildOutcome> {
  const heteroPlan = options.heteroPlan !== undefined ? options.heteroPlan : await detectHeteroRecipe(container, recipe);
  if (heteroPlan) return { kind: 'hetero', plan: heteroPlan, result: await buildHeteroMoe(container, heteroPlan, out, options) };
  const inputs = await describeInputs(container, recipe);
  const revertedLayers = await enhanceExperts(container, recipe, inputs, options);
  const plan = planBuild(container, recipe, inputs, revertedLayers ? { ...options, revertedLayers } : options);
  const result = await executeBuild(container, plan, { ...options, out });
  return { kind: 'moe', plan, result };
}
