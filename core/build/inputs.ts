// The models of a build, described (config + tensor headers, no weights) through the
// expert-source plugins, and checked against each other before any heavy work:
// mergekit-moe finds a mismatch only when it copies the first tensor; moeforge names
// the model and the field up front.
import type { DependencyContainer } from 'tsyringe';
import { normalizeConfig } from '../config/normalize.js';
import type { NormalizedConfig } from '../config/types.js';
import { MoeforgeError, isMoeforgeError } from '../errors.js';
import type { ModelDescription } from '../plugins.js';
import type { MoeRecipe } from '../recipe/moe-recipe.js';
import { describeModel } from '../sources.js';

export interface BuildModel {
  /** Position in BuildInputs.models (0 = the base). */
  index: number;
  ref: string;
  /** Where the recipe names it first (`base_model`, `experts[2].source_model`). */
  field: string;
  description: ModelDescription;
  config: NormalizedConfig;
}

export interface BuildInputs {
  models: BuildModel[];
  base: BuildModel;
  /** Model of each routed expert, in recipe order. */
  experts: BuildModel[];
  /** Model of each shared expert, in recipe order. */
  sharedExperts: BuildModel[];
}

/** Fields every input must share with the base; [NormalizedConfig key, config.json name]. */
const MUST_MATCH: [keyof NormalizedConfig, string][] = [
  ['modelType', 'model_type'],
  ['hiddenSize', 'hidden_size'],
  ['numLayers', 'num_hidden_layers'],
  ['numHeads', 'num_attention_heads'],
  ['numKvHeads', 'num_key_value_heads'],
  ['headDim', 'head_dim'],
  ['vocabSize', 'vocab_size'],
  ['intermediateSize', 'intermediate_size'],
];

export async function describeInputs(container: DependencyContainer, recipe: MoeRecipe): Promise<BuildInputs> {
  const byRef = new Map<string, BuildModel>();
  const models: BuildModel[] = [];
  const get = async (ref: string, field: string): Promise<BuildModel> => {
    const known = byRef.get(ref);
    if (known) return known;
    let description: ModelDescription;
    try {
      description = await describeModel(container, ref);
    } catch (e) {
      if (isMoeforgeError(e)) {
        throw new MoeforgeError(e.code, `${ref}: ${e.message}`, { path: e.path ? `${field}: ${e.path}` : field, cause: e });
      }
      throw e;
    }
    const config = normalizeConfig(description.config, `${field} (${ref})`);
    const model: BuildModel = { index: models.length, ref, field, description, config };
    byRef.set(ref, model);
    models.push(model);
    return model;
  };
  const base = await get(recipe.baseModel, 'base_model');
  const experts: BuildModel[] = [];
  for (const [i, e] of recipe.experts.entries()) experts.push(await get(e.sourceModel, `experts[${i}].source_model`));
  const sharedExperts: BuildModel[] = [];
  for (const [i, e] of (recipe.sharedExperts ?? []).entries()) sharedExperts.push(await get(e.sourceModel, `shared_experts[${i}].source_model`));

  checkCompatible(base, [...experts.map((m, i) => [m, `experts[${i}].source_model`] as const), ...sharedExperts.map((m, i) => [m, `shared_experts[${i}].source_model`] as const)]);
  return { models, base, experts, sharedExperts };
}

function checkCompatible(base: BuildModel, others: (readonly [BuildModel, string])[]): void {
  if (base.config.moe) {
    throw new MoeforgeError('incompatible_models', `base model ${base.ref} is already a mixture of experts (${base.config.modelType}); moeforge builds MoEs from dense models`, {
      path: 'base_model',
    });
  }
  for (const [m, field] of others) {
    for (const [key, hfName] of MUST_MATCH) {
      const a = base.config[key];
      const b = m.config[key];
      if (a !== b) {
        const what = key === 'modelType' ? 'architecture' : hfName;
        throw new MoeforgeError(
          'incompatible_models',
          `${m.ref} has ${hfName} ${String(b)} but base model ${base.ref} has ${String(a)}; all models must share one ${what}`,
          { path: field },
        );
      }
    }
  }
}
