// The heterogeneous build path (issue 9): when a recipe's experts differ from the base
// in architecture, width, depth or FFN size, mergekit-moe refuses; moeforge builds a
// heterogeneous MoE instead (core/hetero, exported by export/formats/hetero). This file
// decides that a recipe is heterogeneous (reading configs only), checks what must still
// be shared (one tokenizer, one vocabulary), picks the form and the sequence router from
// the gate mode, and prints the dry-run:
//   hidden, hidden_avg, hidden_last, cheap_embed, router_input (with prompts) → whole, centroid
//   random, uniform_random (or no prompts)                                → whole, perplexity
//   learned                                                               → whole, learned
//   learned with `gate: {form: projected}`                                → projected (MergeME §3.2)
import type { DependencyContainer } from 'tsyringe';
import { normalizeConfig } from '../config/normalize.js';
import type { NormalizedConfig } from '../config/types.js';
import { MoeforgeError, isMoeforgeError } from '../errors.js';
import { dtypeToTorchDtype, torchDtypeToDtype } from '../dtypes.js';
import { formatBytes } from '../inspect.js';
import { checkSharedTokenizer } from '../hetero/tokenizer-check.js';
import type { HeteroForm } from '../hetero/config.js';
import type { SequenceRouterKind } from '../hetero/router.js';
import { TOKENS, type HeteroTrainer } from '../plugins.js';
import type { MoeRecipe } from '../recipe/moe-recipe.js';
import { describeModel, fetchModel } from '../sources.js';

export interface HeteroBuildModel {
  ref: string;
  /** `base_model` or `experts[i].source_model`. */
  field: string;
  config: NormalizedConfig;
  raw: Record<string, unknown>;
  weightBytes: number;
  /** The weights as the engine holds them (float32), for the peak-memory estimate. */
  float32Bytes: number;
}

export interface HeteroBuildPlan {
  recipe: MoeRecipe;
  base: HeteroBuildModel;
  experts: HeteroBuildModel[];
  /** Why the recipe is heterogeneous, one line per differing expert. */
  reasons: string[];
  form: HeteroForm;
  router: { kind: SequenceRouterKind; topK: number; temperature: number };
  /** Output dtype of the floating-point tensors (recipe `dtype` or --dtype); null: each as stored. */
  dtype: 'F32' | 'F16' | 'BF16' | null;
  /** How the gate mode was read (printed by the dry-run). */
  routerNote: string;
}

/** Fields in which an expert may differ from the base only in a heterogeneous MoE (core/build/inputs.ts MUST_MATCH, minus vocab_size). */
const ARCH_FIELDS: [keyof NormalizedConfig, string][] = [
  ['modelType', 'model_type'],
  ['hiddenSize', 'hidden_size'],
  ['numLayers', 'num_hidden_layers'],
  ['numHeads', 'num_attention_heads'],
  ['numKvHeads', 'num_key_value_heads'],
  ['headDim', 'head_dim'],
  ['intermediateSize', 'intermediate_size'],
];

const CENTROID_MODES = new Set(['hidden', 'hidden_avg', 'hidden_last', 'cheap_embed', 'router_input']);

/** How `a` differs from `b` in architecture, e.g. `model_type qwen2 vs llama, hidden_size 32 vs 64`; '' when alike. */
export function architectureDifference(a: NormalizedConfig, b: NormalizedConfig): string {
  return ARCH_FIELDS.filter(([k]) => a[k] !== b[k])
    .map(([k, hf]) => `${hf} ${String(a[k])} vs ${String(b[k])}`)
    .join(', ');
}

async function describe(container: DependencyContainer, ref: string, field: string): Promise<HeteroBuildModel> {
  try {
    const d = await describeModel(container, ref);
    // An unknown model_type is one line naming the recipe field (normalizeConfig: unknown_architecture).
    const config = normalizeConfig(d.config, `${field} (${ref})`);
    let numel = 0;
    for (const h of d.tensors.values()) numel += h.shape.reduce((a, b) => a * b, 1);
    return { ref, field, config, raw: d.config, weightBytes: d.weightBytes, float32Bytes: 4 * numel };
  } catch (e) {
    if (isMoeforgeError(e) && e.path?.startsWith(field) !== true) {
      throw new MoeforgeError(e.code, `${ref}: ${e.message}`, { path: e.path ? `${field}: ${e.path}` : field, cause: e });
    }
    throw e;
  }
}

/**
 * The heterogeneous plan when some expert differs from the base in architecture,
 * else undefined (the homogeneous builder handles it, with its own checks).
 */
export async function detectHeteroRecipe(container: DependencyContainer, recipe: MoeRecipe): Promise<HeteroBuildPlan | undefined> {
  const base = await describe(container, recipe.baseModel, 'base_model');
  const experts: HeteroBuildModel[] = [];
  for (const [i, e] of recipe.experts.entries()) experts.push(await describe(container, e.sourceModel, `experts[${i}].source_model`));
  const reasons = experts.flatMap((m) => {
    const diff = architectureDifference(m.config, base.config);
    return diff ? [`${m.field} (${m.ref}): ${diff}`] : [];
  });
  if (reasons.length === 0) return undefined;
  if (base.config.moe || experts.some((m) => m.config.moe)) {
    const m = base.config.moe ? base : experts.find((x) => x.config.moe)!;
    throw new MoeforgeError('incompatible_models', `${m.ref} is already a mixture of experts (${m.config.modelType}); heterogeneous experts must be dense models`, { path: m.field });
  }
  if ((recipe.sharedExperts ?? []).length > 0) {
    throw new MoeforgeError('invalid_recipe', 'shared_experts are not supported with heterogeneous experts (every expert is kept whole)', { path: 'shared_experts' });
  }
  for (const m of experts) {
    if (m.config.vocabSize !== base.config.vocabSize) {
      throw new MoeforgeError('incompatible_models', `heterogeneous experts must share one tokenizer: ${base.ref} and ${m.ref} differ (vocab_size ${base.config.vocabSize} vs ${m.config.vocabSize})`, { path: m.field });
    }
  }
  const topK = Math.min(recipe.expertsPerToken, experts.length);
  const { form, kind, routerNote } = chooseRouter(recipe);
  // The trainer's strict `gate:` schema, before any weight is read (the dry-run reports it too).
  if (recipe.gateMode === 'learned' && container.isRegistered(TOKENS.HeteroTrainer, true)) {
    container.resolve<HeteroTrainer>(TOKENS.HeteroTrainer).checkOptions(recipe.gateOptions ?? {});
  }
  return { recipe, base, experts, reasons, form, router: { kind, topK, temperature: 1 }, routerNote, dtype: heteroDtype(recipe.dtype, 'dtype') };
}

/** A dtype name (recipe `dtype`, --dtype) as a float dtype; null keeps each expert's tensors as stored. */
export function heteroDtype(name: string | null | undefined, field: string): 'F32' | 'F16' | 'BF16' | null {
  if (name === null || name === undefined) return null;
  const d = torchDtypeToDtype(name);
  if (!d) throw new MoeforgeError('invalid_argument', `unknown dtype "${name}"; expected float32, float16 or bfloat16`, { path: field });
  return d;
}

function chooseRouter(recipe: MoeRecipe): { form: HeteroForm; kind: SequenceRouterKind; routerNote: string } {
  if (recipe.gateMode === 'learned') {
    const form = recipe.gateOptions?.['form'] ?? 'whole';
    if (form !== 'whole' && form !== 'projected') {
      throw new MoeforgeError('invalid_recipe', `expected whole (experts kept whole, a learned router) or projected (MergeME's trained form), got ${JSON.stringify(form)}`, { path: 'gate.form' });
    }
    return form === 'projected'
      ? {
          form,
          kind: 'embedding',
          routerNote: "gate_mode learned, form projected: MergeME's trained form, a shared embedding and head with per-expert projections and a router on the mean token embedding, trained on the experts' data",
        }
      : { form, kind: 'learned', routerNote: "gate_mode learned: a router on the experts' mean final hidden states, trained on the experts' data" };
  }
  const centroid = CENTROID_MODES.has(recipe.gateMode) && recipe.experts.every((e) => (e.positivePrompts ?? []).length > 0);
  return centroid
    ? { form: 'whole', kind: 'centroid', routerNote: `gate_mode ${recipe.gateMode}: prompt centroids, each expert's mean final hidden state on its positive_prompts` }
    : { form: 'whole', kind: 'perplexity', routerNote: `gate_mode ${recipe.gateMode}: perplexity routing (MergeME), each expert scores the input by its mean token log-likelihood` };
}

/** Fetches the models and checks that they share one tokenizer (files compared); returns local folders, base first. */
export async function fetchHeteroModels(container: DependencyContainer, plan: HeteroBuildPlan): Promise<{ base: string; experts: string[] }> {
  const base = (await fetchModel(container, plan.base.ref)).folder;
  const experts: string[] = [];
  for (const m of plan.experts) experts.push((await fetchModel(container, m.ref)).folder);
  await checkSharedTokenizer([
    { ref: plan.base.ref, field: plan.base.field, folder: base, vocabSize: plan.base.config.vocabSize },
    ...plan.experts.map((m, i) => ({ ref: m.ref, field: m.field, folder: experts[i]!, vocabSize: m.config.vocabSize })),
  ]);
  return { base, experts };
}

/** The `--dry-run` text of a heterogeneous build. */
export function formatHeteroPlan(plan: HeteroBuildPlan): string {
  const lines = [
    plan.form === 'projected'
      ? `heterogeneous MoE (${plan.experts.length} experts, MergeME's trained form: shared embedding and head of width ${Math.max(...plan.experts.map((m) => m.config.hiddenSize))}, per-expert projections; exported as a trust_remote_code repo, model_type moeforge_hetero)`
      : `heterogeneous MoE (${plan.experts.length} experts kept whole${plan.router.kind === 'learned' ? ', a trained router' : ', training-free'}; exported as a trust_remote_code repo, model_type moeforge_hetero)`,
    'why heterogeneous (mergekit-moe would refuse):',
    ...plan.reasons.map((r) => `  ${r}`),
    'experts:',
    ...plan.experts.map((m, i) => {
      const c = m.config;
      return `  experts.${i} ← ${m.ref}: ${c.modelType}, hidden_size ${c.hiddenSize}, ${c.numLayers} layers, intermediate_size ${c.intermediateSize}, ${formatBytes(m.weightBytes)}`;
    }),
    `router: ${plan.router.kind}, top ${plan.router.topK} per sequence (${plan.routerNote})`,
    `tokenizer: from ${plan.base.ref}, checked identical across the models (vocab_size ${plan.base.config.vocabSize})`,
    plan.form === 'projected'
      ? `weights: the experts' layers and final norms ${storedAs(plan)} under experts.{i}.; shared.* and proj_*.{i} written as ${plan.dtype ? dtypeToTorchDtype(plan.dtype) : 'float32'}`
      : `weights: ${formatBytes(plan.experts.reduce((s, m) => s + m.weightBytes, 0))} ${storedAs(plan)}, under experts.{i}., in 16 MiB chunks`,
    peakMemoryLine(plan),
  ];
  return `${lines.join('\n')}\n`;
}

function storedAs(plan: HeteroBuildPlan): string {
  return plan.dtype ? `converted to ${dtypeToTorchDtype(plan.dtype)} (floating-point tensors of another dtype)` : 'copied as stored';
}

function peakMemoryLine(plan: HeteroBuildPlan): string {
  const largest = Math.max(...plan.experts.map((m) => m.float32Bytes));
  const all = plan.experts.reduce((s, m) => s + m.float32Bytes, 0);
  switch (plan.router.kind) {
    case 'centroid':
      return `peak memory: ~${formatBytes(largest)} (the largest expert as float32 while its centroid is computed; one expert at a time)`;
    case 'learned':
      return `peak memory: ~${formatBytes(largest)} (the largest expert as float32 while its hidden states on the training data are computed; one expert at a time)`;
    case 'embedding':
      return `peak memory: ~${formatBytes(all)} and more (every expert as float32 with its activations and gradients while the projections train; for models that fit in memory)`;
    default:
      return 'peak memory: the copy buffers only (no weights decoded)';
  }
}
