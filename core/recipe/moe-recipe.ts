// The MoE recipe: mergekit-moe's YAML (mergekit/moe/config.py, `MoEMergeConfig`)
// read with the meaning mergekit gives it, plus moeforge's own keys. The schema is
// strict where pydantic is lenient (pydantic ignores unknown keys, so a typo such as
// `gateway_mode:` silently builds a `hidden` gate): an unknown key or a wrong type is
// one error line naming the YAML path and what was expected.
import { z } from 'zod';
import { MoeforgeError } from '../errors.js';
import type { TorchDtype } from '../config/types.js';
import { dtypeToTorchDtype, torchDtypeToDtype } from '../dtypes.js';
import { loadYamlDocument } from './yaml.js';

/** The gate modes mergekit-moe knows (mergekit/moe/router.py) plus moeforge's `router_input`. */
export const BUILTIN_GATE_MODES = ['hidden', 'hidden_avg', 'hidden_last', 'cheap_embed', 'random', 'uniform_random', 'router_input'];

export interface MoeExpertSpec {
  sourceModel: string;
  positivePrompts: string[] | null;
  negativePrompts: string[] | null;
  noiseScale: number | null;
  residualScale: number | null;
  /** gate_mode learned: a text / JSONL file of training samples for this expert. */
  trainData: string | null;
  /** moeforge (issue 10): revert the layers whose task vector does not lower the loss on `calibration`. */
  enhance?: ExpertEnhanceSpec | null;
  /**
   * Shared experts only: built by merging the routed experts' MLPs with this method (base =
   * task-vector origin) instead of copied from a model; `sourceModel` is then the base.
   */
  merge?: { method: string; parameters: Record<string, unknown> } | null;
}

export type SharedWeightsSpec =
  | { method: 'base' }
  | { method: 'average' }
  | { method: string; parameters: Record<string, unknown> };

export interface MoeRecipe {
  baseModel: string;
  gateMode: string;
  /** Output dtype; null = the base model's torch_dtype (mergekit's `select_dtype`). */
  dtype: TorchDtype | null;
  expertsPerToken: number;
  experts: MoeExpertSpec[];
  sharedExperts: MoeExpertSpec[] | null;
  /** Requested output architecture (`mixtral`, `qwen2_moe`, `qwen3_moe`, or a mergekit name prefix). */
  architecture: string | null;
  // moeforge keys
  sharedWeights: SharedWeightsSpec;
  seed: number | null;
  shardSize: string | number | null;
  /** mergekit's --i-understand-this-is-not-useful-without-training. */
  allowIdenticalExperts: boolean;
  /** gate_mode learned: the `gate:` block (objective, epochs, lr, …), validated by the strategy. */
  gateOptions: Record<string, unknown> | null;
}

const PROMPTS = 'a list of prompt strings';
const promptList = z.array(z.string({ error: 'expected a prompt string' }), { error: `expected ${PROMPTS}` }).nullish();
const optionalNumber = z.number({ error: 'expected a number' }).nullish();
const modelRef = z.string({ error: 'expected a model reference (string)' }).trim().min(1, { error: 'expected a model reference, got an empty string' });

// moeforge: importance-based expert enhancement (issue 10; experts/importance/enhance.ts).
const enhanceSchema = z
  .strictObject(
    {
      threshold: z.number({ error: 'expected a number (minimum loss rise of a kept layer)' }).nullish(),
      keep: z.number({ error: 'expected a number in (0, 1]' }).gt(0, { error: 'keep must be in (0, 1]' }).lte(1, { error: 'keep must be in (0, 1]' }).nullish(),
      calibration: z.string({ error: 'expected a path to a text or JSONL file' }).min(1),
      samples: z.number().int().min(1).nullish(),
      seq_len: z.number().int().min(2).nullish(),
      seed: z.number().int().min(0).nullish(),
    },
    { error: 'expected a mapping {threshold or keep, calibration, samples, seq_len, seed}' },
  )
  .refine((e) => e.threshold != null || e.keep != null, { error: 'give threshold or keep' });

export interface ExpertEnhanceSpec {
  threshold: number | null;
  keep: number | null;
  calibration: string;
  samples: number | null;
  seqLen: number | null;
  seed: number | null;
}

const expertSchema = z.strictObject(
  {
    source_model: modelRef,
    positive_prompts: promptList,
    negative_prompts: promptList,
    noise_scale: optionalNumber,
    residual_scale: optionalNumber,
    train_data: z.string({ error: 'expected a path to a text or JSONL file' }).min(1).nullish(),
    enhance: enhanceSchema.nullish(),
  },
  { error: 'expected an expert (a mapping with source_model, positive_prompts, …)' },
);

// moeforge: a shared expert may be a merge of the routed experts' MLPs (the shared part
// of Twin-Merging, arXiv 2406.15479) instead of a model: `merge: {method: ties, parameters: {...}}`.
const sharedExpertSchema = expertSchema.extend({
  source_model: modelRef.optional(),
  merge: z
    .strictObject({
      method: z.string({ error: 'expected a merge method name (ties, task_arithmetic, linear, average, …)' }).min(1),
      parameters: z.record(z.string(), z.unknown(), { error: 'expected a mapping of parameters' }).nullish(),
    }, { error: 'expected {method: <merge method>, parameters: {...}}' })
    .optional(),
});

const sharedWeightsSchema = z.union(
  [
    z.literal(['base', 'average']),
    z.strictObject({
      method: z.string({ error: 'expected a merge method name (ties, dare_ties, …)' }).min(1),
      parameters: z.record(z.string(), z.unknown(), { error: 'expected a mapping of parameters' }).nullish(),
    }),
  ],
  { error: 'expected base, average or {method: <merge method>, parameters: {...}}' },
);

// mergekit's dtype_from_name spellings (`bfloat16`, `torch.float16`, …) and the usual short ones.
const dtypeSchema = z
  .string({ error: 'expected float32, float16 or bfloat16' })
  .refine((s) => torchDtypeToDtype(s) !== undefined, { error: 'expected float32, float16 or bfloat16' })
  .transform((s) => dtypeToTorchDtype(torchDtypeToDtype(s)!));

const recipeSchema = z.strictObject(
  {
    base_model: modelRef,
    experts: z.array(expertSchema, { error: 'expected a list of experts' }).min(1, { error: 'expected at least one expert' }),
    gate_mode: z.string({ error: 'expected a gate mode name' }).default('hidden'),
    dtype: dtypeSchema.nullish(),
    experts_per_token: z
      .number({ error: 'expected a whole number' })
      .int({ error: 'expected a whole number' })
      .min(1, { error: 'experts per token must be >= 1' })
      .default(2),
    shared_experts: z.array(sharedExpertSchema, { error: 'expected a list of experts (source_model or merge, positive_prompts, …)' }).nullish(),
    architecture: z.string({ error: 'expected an output architecture name (mixtral, qwen2_moe, qwen3_moe)' }).nullish(),
    // moeforge keys
    shared_weights: sharedWeightsSchema.optional(),
    seed: z.number({ error: 'expected a whole number' }).int({ error: 'expected a whole number' }).min(0).nullish(),
    shard_size: z.union([z.string(), z.number()], { error: 'expected a byte size such as 2GB' }).nullish(),
    allow_identical_experts: z.boolean({ error: 'expected true or false' }).optional(),
    gate: z.record(z.string(), z.unknown(), { error: 'expected a mapping of gate options (objective, epochs, lr, …)' }).optional(),
    // Provenance a build writes into moeforge.yml (version, sources); read back and ignored.
    moeforge: z.record(z.string(), z.unknown(), { error: 'expected the provenance mapping moeforge writes' }).optional(),
  },
  { error: 'expected a mapping of recipe keys (base_model, experts, gate_mode, …)' },
);

const KNOWN_KEYS = {
  '': Object.keys(recipeSchema.shape),
  expert: Object.keys(expertSchema.shape),
};

function yamlPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return v.length > 40 ? 'a string' : `"${v}"`;
  return `${typeof v === 'number' ? 'the number' : typeof v} ${String(v)}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** `gateway_mode` → `gate_mode`, `yamlbase_model` → `base_model`. */
function suggestKey(key: string, known: string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  let bestOk = false;
  for (const c of known) {
    const d = editDistance(k, c);
    // A known key glued to something (`yamlbase_model`) counts even when far in edits.
    const ok = d <= Math.max(2, Math.floor(c.length / 3)) || k.endsWith(c) || k.startsWith(c);
    if (d < bestD) [best, bestD, bestOk] = [c, d, ok];
  }
  return bestOk ? best : undefined;
}

function issueToError(issue: z.core.$ZodIssue, raw: unknown, label: string): MoeforgeError {
  const path = yamlPath(issue.path);
  const at = (p: string) => `${label}: ${p}`;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const inExpert = issue.path.some((p) => p === 'experts' || p === 'shared_experts');
    const known = inExpert ? KNOWN_KEYS.expert : KNOWN_KEYS[''];
    const hint = suggestKey(key, known);
    const full = path ? `${path}.${key}` : key;
    return new MoeforgeError('invalid_recipe', `unknown key${hint ? ` (did you mean ${hint}?)` : `; expected one of ${known.join(', ')}`}`, {
      path: at(full),
    });
  }
  const got = valueAt(raw, issue.path);
  const message = issue.message.startsWith('expected ')
    ? `${got === undefined ? 'required: ' : ''}${issue.message}${got === undefined ? '' : `, got ${describeValue(got)}`}`
    : issue.message;
  return new MoeforgeError('invalid_recipe', message, { path: at(path || '(top level)') });
}

function toSharedExpert(e: z.infer<typeof sharedExpertSchema>, baseModel: string): MoeExpertSpec {
  const { source_model, merge, ...rest } = e;
  return {
    ...toExpert({ ...rest, source_model: source_model ?? baseModel }),
    merge: merge ? { method: merge.method, parameters: merge.parameters ?? {} } : null,
  };
}

function toExpert(e: z.infer<typeof expertSchema>): MoeExpertSpec {
  return {
    sourceModel: e.source_model,
    positivePrompts: e.positive_prompts ?? null,
    negativePrompts: e.negative_prompts ?? null,
    noiseScale: e.noise_scale ?? null,
    residualScale: e.residual_scale ?? null,
    trainData: e.train_data ?? null,
    ...(e.enhance
      ? {
          enhance: {
            threshold: e.enhance.threshold ?? null,
            keep: e.enhance.keep ?? null,
            calibration: e.enhance.calibration,
            samples: e.enhance.samples ?? null,
            seqLen: e.enhance.seq_len ?? null,
            seed: e.enhance.seed ?? null,
          },
        }
      : {}),
  };
}

function checkModelRef(ref: string, path: string, label: string): void {
  // A shell template that was never expanded (`base_model: $base_model`).
  if (/^\$\{?[A-Za-z_]/.test(ref)) {
    throw new MoeforgeError('invalid_recipe', `"${ref}" looks like an unexpanded shell variable, not a model reference`, { path: `${label}: ${path}` });
  }
  if (ref.includes('+')) {
    throw new MoeforgeError('invalid_recipe', `"${ref}": model+LoRA references are not supported; merge the LoRA first`, { path: `${label}: ${path}` });
  }
}

export interface RecipeOptions {
  /** Names of the registered gate strategies (defaults to the built-in list). */
  gateModes?: readonly string[];
  /** Gate modes that need no prompts (mergekit's `random`; moeforge adds `uniform_random`). */
  promptlessGateModes?: readonly string[];
  /** The command-line counterpart of `allow_identical_experts: true`. */
  allowIdenticalExperts?: boolean;
}

/** Validates an already-parsed YAML value as an MoE recipe (schema and mergekit's `is_bad_config`). */
export function validateMoeRecipe(raw: unknown, label: string, options: RecipeOptions = {}): MoeRecipe {
  const parsed = recipeSchema.safeParse(raw);
  if (!parsed.success) {
    // An unknown key usually explains a missing one (`yamlbase_model`), so report it first.
    const issues = [...parsed.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
    throw issueToError(issues[0]!, raw, label);
  }
  const r = parsed.data;
  const fail = (path: string, message: string) => new MoeforgeError('invalid_recipe', message, { path: `${label}: ${path}` });

  checkModelRef(r.base_model, 'base_model', label);
  r.experts.forEach((e, i) => checkModelRef(e.source_model, `experts[${i}].source_model`, label));
  (r.shared_experts ?? []).forEach((e, i) => {
    if ((e.source_model === undefined) === (e.merge === undefined)) {
      throw fail(`shared_experts[${i}]`, 'give a shared expert either source_model or merge (a merge of the routed experts), not both or neither');
    }
    if (e.source_model !== undefined) checkModelRef(e.source_model, `shared_experts[${i}].source_model`, label);
  });

  const gateModes = options.gateModes ?? BUILTIN_GATE_MODES;
  if (!gateModes.includes(r.gate_mode)) {
    if (/^\$\{?[A-Za-z_]/.test(r.gate_mode)) throw fail('gate_mode', `"${r.gate_mode}" looks like an unexpanded shell variable`);
    throw fail('gate_mode', `unknown gate mode "${r.gate_mode}"; expected one of ${gateModes.join(', ')}`);
  }

  // gate_mode learned trains on each expert's data: positive_prompts and/or train_data.
  const expertLists = [['experts', r.experts], ['shared_experts', r.shared_experts ?? []]] as const;
  for (const [field, list] of expertLists) {
    list.forEach((e, i) => {
      if (e.train_data && r.gate_mode !== 'learned') throw fail(`${field}[${i}].train_data`, `train_data is read only by gate_mode learned, not ${r.gate_mode}`);
    });
  }
  if (r.gate && r.gate_mode !== 'learned') throw fail('gate', `gate options are read only by gate_mode learned, not ${r.gate_mode}`);
  if (r.gate_mode === 'learned') {
    r.experts.forEach((e, i) => {
      if ((e.positive_prompts ?? []).length === 0 && !e.train_data) {
        throw fail(`experts[${i}]`, 'gate_mode learned needs training data for every expert: give it positive_prompts or a train_data file');
      }
    });
  }

  // mergekit/moe/config.py is_bad_config, in its order.
  if (r.experts.length < r.experts_per_token) {
    throw fail('experts_per_token', `${r.experts_per_token} experts per token but only ${r.experts.length} experts; must include at least as many experts as experts_per_token`);
  }
  const promptless = options.promptlessGateModes ?? ['random', 'uniform_random'];
  const allowSame = (r.allow_identical_experts ?? false) || (options.allowIdenticalExperts ?? false);
  if (!promptless.includes(r.gate_mode)) {
    r.experts.forEach((e, i) => {
      if (!e.positive_prompts || e.positive_prompts.length === 0) {
        throw fail(`experts[${i}].positive_prompts`, `gate_mode ${r.gate_mode} needs at least one positive prompt for every expert`);
      }
    });
    const tup = (e: z.infer<typeof expertSchema>) => JSON.stringify([e.positive_prompts, e.negative_prompts ?? []]);
    if (r.experts.length > 1 && r.experts.every((e) => tup(e) === tup(r.experts[0]!))) {
      throw fail('experts', 'positive and negative prompts are identical for all experts, which gives a router that cannot tell them apart; give each expert prompts of what it should receive');
    }
    const shared = r.shared_experts ?? [];
    const withPrompts = shared.filter((e) => e.positive_prompts && e.positive_prompts.length > 0).length;
    if (withPrompts !== 0 && withPrompts !== shared.length) {
      throw fail('shared_experts', 'give positive_prompts to all shared experts or to none');
    }
  }
  // mergekit returns early for `random` (training follows anyway), so only then are identical models fine.
  if (r.gate_mode !== 'random' && !allowSame && r.experts.length > 1 && r.experts.every((e) => e.source_model === r.experts[0]!.source_model)) {
    throw fail('experts', 'all experts are the same model, which only costs memory; set allow_identical_experts: true (or --allow-identical-experts) if you will train it afterwards');
  }

  const sw = r.shared_weights ?? 'base';
  const sharedWeights: SharedWeightsSpec =
    typeof sw === 'string'
      ? ({ method: sw } as SharedWeightsSpec)
      : sw.method === 'base' || sw.method === 'average'
        ? ({ method: sw.method } as SharedWeightsSpec)
        : { method: sw.method, parameters: sw.parameters ?? {} };

  return {
    baseModel: r.base_model,
    gateMode: r.gate_mode,
    dtype: r.dtype ?? null,
    expertsPerToken: r.experts_per_token,
    experts: r.experts.map(toExpert),
    sharedExperts: r.shared_experts ? r.shared_experts.map((e) => toSharedExpert(e, r.base_model)) : null,
    architecture: r.architecture ?? null,
    sharedWeights,
    seed: r.seed ?? null,
    shardSize: r.shard_size ?? null,
    allowIdenticalExperts: allowSame,
    gateOptions: r.gate ?? null,
  };
}

/** Parses recipe text (a file's content); `label` is the file name used in errors. */
export function parseMoeRecipe(text: string, label: string, options: RecipeOptions = {}): MoeRecipe {
  const raw = loadYamlDocument(text, label);
  if (raw === null || raw === undefined) throw new MoeforgeError('invalid_recipe', 'the recipe is empty', { path: label });
  return validateMoeRecipe(raw, label, options);
}

function expertToYaml(e: MoeExpertSpec): Record<string, unknown> {
  const out: Record<string, unknown> = e.merge ? { merge: { method: e.merge.method, parameters: e.merge.parameters } } : { source_model: e.sourceModel };
  if (e.positivePrompts) out.positive_prompts = e.positivePrompts;
  if (e.negativePrompts) out.negative_prompts = e.negativePrompts;
  if (e.noiseScale !== null) out.noise_scale = e.noiseScale;
  if (e.residualScale !== null) out.residual_scale = e.residualScale;
  if (e.trainData) out.train_data = e.trainData;
  if (e.enhance) {
    const { threshold, keep, calibration, samples, seqLen, seed } = e.enhance;
    out.enhance = Object.fromEntries(Object.entries({ threshold, keep, calibration, samples, seq_len: seqLen, seed }).filter(([, v]) => v !== null));
  }
  return out;
}

/** The resolved recipe in its on-disk (snake_case) spelling, every default made explicit. */
export function recipeToYamlObject(r: MoeRecipe): Record<string, unknown> {
  const out: Record<string, unknown> = {
    base_model: r.baseModel,
    gate_mode: r.gateMode,
    dtype: r.dtype,
    experts_per_token: r.expertsPerToken,
    experts: r.experts.map(expertToYaml),
  };
  if (r.sharedExperts) out.shared_experts = r.sharedExperts.map(expertToYaml);
  if (r.architecture) out.architecture = r.architecture;
  out.shared_weights = 'parameters' in r.sharedWeights ? { method: r.sharedWeights.method, parameters: r.sharedWeights.parameters } : r.sharedWeights.method;
  if (r.seed !== null) out.seed = r.seed;
  if (r.shardSize !== null) out.shard_size = r.shardSize;
  if (r.allowIdenticalExperts) out.allow_identical_experts = true;
  if (r.gateOptions) out.gate = r.gateOptions;
  return out;
}
