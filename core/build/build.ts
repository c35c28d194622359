// `moeforge build` as a library call: read and validate the recipe, describe and
// check the models, plan, and (unless dry-run) execute. Every plugin comes from the
// container (expert sources, gate strategies, output formats, merge methods).
import { readFile } from 'node:fs/promises';
import type { DependencyContainer } from 'tsyringe';
import { fsError } from '../errors.js';
import { TOKENS, type GateStrategy } from '../plugins.js';
import { parseMoeRecipe, type MoeRecipe } from '../recipe/moe-recipe.js';
import { executeBuild, type BuildResult, type ExecuteOptions } from './executor.js';
import { describeInputs } from './inputs.js';
import { planBuild, type BuildPlan, type PlanOptions } from './plan.js';

export interface BuildOptions extends PlanOptions, Omit<ExecuteOptions, 'out'> {
  /** mergekit's --i-understand-this-is-not-useful-without-training. */
  allowIdenticalExperts?: boolean;
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

export async function buildMoe(container: DependencyContainer, recipe: MoeRecipe, out: string, options: BuildOptions = {}): Promise<{ plan: BuildPlan; result: BuildResult }> {
  const plan = await planFromRecipe(container, recipe, options);
  const result = await executeBuild(container, plan, { ...options, out });
  return { plan, result };
}
