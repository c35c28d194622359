// `moeforge build` as a library call: read and validate the recipe, describe and
// check the models, plan, and (unless dry-run) execute. Every plugin comes from the
// container (expert sources, gate strategies, output formats, merge methods).
import { readFile } from 'node:fs/promises';
import type { DependencyContainer } from 'tsyringe';
import { MoeforgeError, fsError } from '../errors.js';
import { TOKENS, type GateStrategy, type ModelEnhancer } from '../plugins.js';
import { fetchModel } from '../sources.js';
import { parseMoeRecipe, type MoeRecipe } from '../recipe/moe-recipe.js';
import { executeBuild, type BuildResult, type ExecuteOptions } from './executor.js';
import { describeInputs, type BuildInputs } from './inputs.js';
import { planBuild, type BuildPlan, type PlanOptions } from './plan.js';

export interface BuildOptions extends PlanOptions, Omit<ExecuteOptions, 'out'> {
  /** mergekit's --i-understand-this-is-not-useful-without-training. */
  allowIdenticalExperts?: boolean;
  /** Runs the experts' `enhance:` (issue 10), from the composition root (core never imports experts/). */
  enhancer?: ModelEnhancer;
  /** Lines for the user (the kept layers of each enhanced expert). */
  onNote?: (line: string) => void;
}

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

export async function buildMoe(container: DependencyContainer, recipe: MoeRecipe, out: string, options: BuildOptions = {}): Promise<{ plan: BuildPlan; result: BuildResult }> {
  const inputs = await describeInputs(container, recipe);
  const revertedLayers = await enhanceExperts(container, recipe, inputs, options);
  const plan = planBuild(container, recipe, inputs, revertedLayers ? { ...options, revertedLayers } : options);
  const result = await executeBuild(container, plan, { ...options, out });
  return { plan, result };
}
