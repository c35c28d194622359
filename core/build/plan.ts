// A build is first a plan (DESIGN.md §2 "Plan, then execute"): every output tensor
// with its inputs, its operation and its shard, the gate computation, the output
// bytes and a peak-memory estimate, all from configs and safetensors headers, before
// a weight is read. `--dry-run` prints it; the executor follows it.
//
// Output tensors are the output config's expectedTensors (name order, as
// save_pretrained lays them out); each role says where it comes from, as mergekit's
// MoE writers do (mergekit/moe/{mixtral,qwen,qwen3}.py): routed expert e's FFN is
// expert e's dense MLP (noise_scale and residual_scale applied as
// mergekit/moe/common.py `noise_and_scale` does), the router is the gate
// computation, everything else is a shared weight (the base's, or merged).
import type { DependencyContainer } from 'tsyringe';
import { expectedTensors, getArchitecture, tensorName } from '../architectures/index.js';
import { planShards, type ShardPlan } from '../checkpoint/writer.js';
import type { NormalizedConfig } from '../config/types.js';
import { DTYPE_BYTES, torchDtypeToDtype, type Dtype } from '../dtypes.js';
import { MoeforgeError } from '../errors.js';
import { parseByteSize } from '../fs/atomic.js';
import { TOKENS, type GateStrategy, type MergeMethod, type MoeShape, type OutputFormat } from '../plugins.js';
import type { MoeExpertSpec, MoeRecipe } from '../recipe/moe-recipe.js';
import { ROLE_INFO, type TensorRole, type TensorSlot } from '../roles.js';
import type { BuildInputs, BuildModel } from './inputs.js';
import { selectOutputFormat } from './select-format.js';

export type OutDtype = 'F32' | 'F16' | 'BF16';

export type TensorOp =
  /** One input tensor, converted to the output dtype; bytes copied unchanged when `raw`. */
  | { kind: 'copy'; model: number; input: string; raw: boolean }
  /** An expert FFN tensor: copy plus mergekit's noise_scale / residual_scale. */
  | { kind: 'expert'; model: number; input: string; raw: boolean; noiseScale: number | null; scale: number | null }
  /** A shared weight merged over the experts' models (base = task-vector origin). */
  | { kind: 'merge'; method: string; base: number; models: number[]; input: string; sharedExpert?: boolean }
  /** A shared weight averaged over the experts' models (Branch-Train-MiX). */
  | { kind: 'average'; models: number[]; input: string }
  /** Router weights of a layer: routed experts [E, d], or the Qwen2-MoE shared expert's gate [1, d]. */
  | { kind: 'gate'; layer: number; which: 'router' | 'shared' }
  /** Zeros: q/k/v biases the output has and the inputs lack; a prompt-less shared expert gate. */
  | { kind: 'zeros' };

export interface PlannedTensor {
  name: string;
  slot: TensorSlot;
  shape: number[];
  numel: number;
  dtype: OutDtype;
  bytes: number;
  op: TensorOp;
}

export interface GatePlan {
  mode: string;
  strategy: GateStrategy;
  /** Routed experts, then the shared experts that have prompts (mergekit's stacking). */
  experts: MoeExpertSpec[];
  sharedWithPrompts: boolean;
  layers: number[];
  /** Distinct prompts run through the base (0 for random gates). */
  prompts: number;
  /** Forward passes over the base model: prompts × layers for hidden-state modes. */
  forward: boolean;
}

export interface BuildPlan {
  recipe: MoeRecipe;
  format: OutputFormat;
  inputs: BuildInputs;
  outputConfig: NormalizedConfig;
  configJson: Record<string, unknown>;
  dtype: OutDtype;
  torchDtype: 'float32' | 'float16' | 'bfloat16';
  seed: number;
  tensors: PlannedTensor[];
  shards: ShardPlan[];
  shardSizeBytes: number;
  totalBytes: number;
  gate: GatePlan;
  mergeMethod: MergeMethod | undefined;
  /** Resolved merge parameters (global, and one entry per merged expert model). */
  mergeParams: { global: Record<string, unknown>; perModel: Record<string, unknown>[] } | undefined;
  /** A shared expert built by merging the routed experts' MLPs (`shared_experts: [{merge: …}]`). */
  sharedExpertMerge?: { method: MergeMethod; params: { global: Record<string, unknown>; perModel: Record<string, unknown>[] } } | undefined;
  chunkElements: number;
  /** Estimated peak bytes held at once (weights and buffers; the JS runtime comes on top). */
  peakMemoryBytes: number;
  /** float32 bytes the engine holds for the gate computation, and whether it streams layers. */
  engine: { bytes: number; streamed: boolean } | undefined;
  /** Things that build but may surprise (mergekit logs the same ones). */
  warnings: string[];
}

export interface PlanOptions {
  seed?: number;
  shardSize?: string | number;
  dtype?: string;
  /** Engine memory limit for the gate computation (float32 weight bytes); above it the base is streamed. */
  maxResidentBytes?: number;
  /** Elements per chunk for decoded and merged tensors. */
  chunkElements?: number;
  /** Expert enhancement (issue 10): model index → layers read from the base instead of that model. */
  revertedLayers?: Map<number, Set<number>>;
}

/** transformers' default max_shard_size ("5GB"), and mergekit's out_shard_size (5e9). */
export const DEFAULT_SHARD_SIZE = 5_000_000_000;
export const DEFAULT_CHUNK_ELEMENTS = 1 << 20;
/** Raw copies stream in slices of this many bytes. */
export const COPY_SLICE_BYTES = 16 << 20;
export const DEFAULT_MAX_RESIDENT_BYTES = 2 * 2 ** 30;
/** mergekit-moe has no seed option (torch's global RNG); moeforge's default is fixed, so builds repeat. */
export const DEFAULT_SEED = 0;

const EXPERT_ROLE: Partial<Record<TensorRole, TensorRole>> = {
  expert_gate: 'mlp_gate',
  expert_up: 'mlp_up',
  expert_down: 'mlp_down',
  shared_expert_gate_proj: 'mlp_gate',
  shared_expert_up: 'mlp_up',
  shared_expert_down: 'mlp_down',
};

function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

function outDtypeOf(recipe: MoeRecipe, base: NormalizedConfig, override: string | undefined): OutDtype {
  // mergekit's select_dtype: the recipe's dtype, else the base model's torch_dtype.
  const name = override ?? recipe.dtype ?? base.torchDtype;
  const d = torchDtypeToDtype(name);
  if (!d) throw new MoeforgeError('invalid_argument', `unknown dtype "${name}"; expected float32, float16 or bfloat16`, { path: '--dtype' });
  return d;
}

function shardSizeOf(recipe: MoeRecipe, override: string | number | undefined): number {
  const v = override ?? recipe.shardSize ?? DEFAULT_SHARD_SIZE;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v <= 0) throw new MoeforgeError('invalid_argument', `shard size ${v} is not a positive number of bytes`, { path: 'shard_size' });
    return v;
  }
  return parseByteSize(v);
}

/** Looks up an input tensor and checks its shape against the output's; errors name model and tensor. */
function inputTensor(model: BuildModel, slot: TensorSlot, expectShape: number[], outName: string): { name: string; dtype: string } {
  const name = tensorName(getArchitecture(model.config.modelType), slot);
  const header = model.description.tensors.get(name);
  if (!header) {
    throw new MoeforgeError('missing_tensor', `${model.ref} has no tensor ${name} (needed for ${outName})`, { path: `${model.field}: ${name}` });
  }
  if (!sameShape(header.shape, expectShape)) {
    throw new MoeforgeError('shape_mismatch', `${model.ref}: ${name} has shape [${header.shape.join(', ')}], expected [${expectShape.join(', ')}]`, {
      path: `${model.field}: ${name}`,
    });
  }
  return { name, dtype: header.dtype };
}

/** `shared_experts[0].merge`: its method and parameters, resolved and validated like shared_weights'. */
function planSharedExpertMerge(container: DependencyContainer, spec: MoeExpertSpec | undefined, hasSharedExpert: boolean, numModels: number): BuildPlan['sharedExpertMerge'] {
  if (!spec?.merge) return undefined;
  const field = 'shared_experts[0].merge';
  if (!hasSharedExpert) throw new MoeforgeError('invalid_recipe', 'a merged shared expert needs an output with a shared expert (architecture: qwen2_moe)', { path: field });
  if (spec.merge.method === 'average') return undefined;
  const methods = container.isRegistered(TOKENS.MergeMethod, true) ? container.resolveAll<MergeMethod>(TOKENS.MergeMethod) : [];
  const method = methods.find((m) => m.name === spec.merge!.method);
  if (!method) {
    throw new MoeforgeError('invalid_recipe', `unknown merge method "${spec.merge.method}"; expected average or one of ${methods.map((m) => m.name).join(', ')}`, { path: `${field}.method` });
  }
  try {
    const params = mergeParameters(method, spec.merge.parameters, numModels);
    method.validate(params.global, params.perModel, true);
    return { method, params };
  } catch (e) {
    if (e instanceof MoeforgeError) throw new MoeforgeError(e.code, e.message, { path: e.path?.replace(/^shared_weights/, field) ?? field, cause: e });
    throw e;
  }
}

function resolveMergeMethod(container: DependencyContainer, recipe: MoeRecipe): MergeMethod | undefined {
  const sw = recipe.sharedWeights;
  if (!('parameters' in sw)) return undefined;
  const methods = container.isRegistered(TOKENS.MergeMethod, true) ? container.resolveAll<MergeMethod>(TOKENS.MergeMethod) : [];
  const method = methods.find((m) => m.name === sw.method);
  if (!method) {
    throw new MoeforgeError('invalid_recipe', `unknown merge method "${sw.method}"; expected base, average or one of ${methods.map((m) => m.name).join(', ')}`, {
      path: 'shared_weights.method',
    });
  }
  return method;
}

/**
 * Parameters of a shared-weights merge, resolved the way mergekit's ConfigReader does for
 * a per-model parameter missing from the model: from the global block. `weight` defaults
 * to 1 for every expert model (an equal-weight merge).
 */
export function mergeParameters(method: MergeMethod, parameters: Record<string, unknown>, numModels: number): { global: Record<string, unknown>; perModel: Record<string, unknown>[] } {
  const known = new Set([...method.globalParameterDefs, ...method.modelParameterDefs].map((d) => d.name));
  for (const key of Object.keys(parameters)) {
    if (!known.has(key)) {
      throw new MoeforgeError('invalid_recipe', `${method.name} has no parameter "${key}"; it reads ${[...known].join(', ') || 'none'}`, {
        path: `shared_weights.parameters.${key}`,
      });
    }
  }
  const global: Record<string, unknown> = {};
  for (const def of method.globalParameterDefs) {
    const v = parameters[def.name] ?? def.default;
    if (v !== undefined) global[def.name] = v;
  }
  const one: Record<string, unknown> = {};
  for (const def of method.modelParameterDefs) {
    const v = parameters[def.name] ?? def.default ?? (def.name === 'weight' ? 1 : undefined);
    if (v !== undefined) one[def.name] = v;
  }
  return { global, perModel: Array.from({ length: numModels }, () => ({ ...one })) };
}

function distinct(models: BuildModel[]): number[] {
  return [...new Set(models.map((m) => m.index))];
}

export function planBuild(container: DependencyContainer, recipe: MoeRecipe, inputs: BuildInputs, options: PlanOptions = {}): BuildPlan {
  const base = inputs.base.config;
  const formats = container.isRegistered(TOKENS.OutputFormat, true) ? container.resolveAll<OutputFormat>(TOKENS.OutputFormat) : [];
  const strategies = container.isRegistered(TOKENS.GateStrategy, true) ? container.resolveAll<GateStrategy>(TOKENS.GateStrategy) : [];
  const strategy = strategies.find((s) => s.name === recipe.gateMode);
  if (!strategy) {
    throw new MoeforgeError('invalid_recipe', `unknown gate mode "${recipe.gateMode}"; expected one of ${strategies.map((s) => s.name).join(', ')}`, { path: 'gate_mode' });
  }
  const shared = recipe.sharedExperts ?? [];
  const format = selectOutputFormat(formats, recipe.architecture, {
    families: inputs.models.map((m) => m.config.modelType),
    base,
    numSharedExperts: shared.length,
    gateMode: recipe.gateMode,
  });
  const hasSharedExpert = format.family === 'qwen2_moe';
  const shape: MoeShape = {
    numExperts: recipe.experts.length,
    expertsPerToken: recipe.expertsPerToken,
    sharedExpertIntermediateSize: hasSharedExpert ? (inputs.sharedExperts[0] ?? inputs.base).config.intermediateSize : null,
  };
  const dtype = outDtypeOf(recipe, base, options.dtype);
  const torchDtype = dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16';
  const outputConfig = format.outputConfig(base, shape);
  const configJson = format.synthesizeConfig(base, shape, torchDtype);
  const mergeMethod = resolveMergeMethod(container, recipe);
  const expertModels = distinct(inputs.experts);
  const mergeParams = mergeMethod
    ? mergeParameters(mergeMethod, (recipe.sharedWeights as { parameters: Record<string, unknown> }).parameters, expertModels.length)
    : undefined;
  if (mergeMethod && mergeParams) mergeMethod.validate(mergeParams.global, mergeParams.perModel, true);
  const sharedExpertMerge = planSharedExpertMerge(container, shared[0], hasSharedExpert, expertModels.length);

  // mergekit gates a shared expert only when it has prompts (scripts/moe.py `need_gates`), in any mode.
  const sharedWithPrompts = hasSharedExpert && shared.length > 0 && (shared[0]!.positivePrompts?.length ?? 0) > 0;
  const gateExperts = [...recipe.experts, ...(sharedWithPrompts ? shared : [])];
  const layers = Array.from({ length: base.numLayers }, (_, i) => i);
  const prompts = new Set<string>();
  if (strategy.needsPrompts) for (const e of gateExperts) for (const p of [...(e.positivePrompts ?? []), ...(e.negativePrompts ?? [])]) prompts.add(p);

  const reverted = (model: number, layer: number | undefined) => layer !== undefined && (options.revertedLayers?.get(model)?.has(layer) ?? false);
  const tensors: PlannedTensor[] = [];
  for (const t of expectedTensors(outputConfig)) {
    const role = t.slot.role;
    const numel = numelOf(t.shape);
    const bytes = numel * DTYPE_BYTES[dtype];
    let op: TensorOp;
    const expertRole = EXPERT_ROLE[role];
    if (role === 'router') {
      op = { kind: 'gate', layer: t.slot.layer!, which: 'router' };
    } else if (role === 'shared_expert_gate') {
      op = sharedWithPrompts ? { kind: 'gate', layer: t.slot.layer!, which: 'shared' } : { kind: 'zeros' };
    } else if (expertRole && ROLE_INFO[role].scope !== 'expert' && shared[0]?.merge) {
      // The shared expert as a merge of the routed experts' MLPs, the base as task-vector origin.
      const slot = { role: expertRole, layer: t.slot.layer! };
      const input = inputTensor(inputs.base, slot, t.shape, t.name);
      for (const m of expertModels) inputTensor(inputs.models[m]!, slot, t.shape, t.name);
      op =
        shared[0].merge.method === 'average'
          ? { kind: 'average', models: expertModels, input: input.name }
          : { kind: 'merge', method: shared[0].merge.method, base: inputs.base.index, models: expertModels, input: input.name, sharedExpert: true };
    } else if (expertRole) {
      const isShared = ROLE_INFO[role].scope !== 'expert';
      const spec: MoeExpertSpec | undefined = isShared ? shared[0] : recipe.experts[t.slot.expert!];
      const source = isShared ? (inputs.sharedExperts[0] ?? inputs.base) : inputs.experts[t.slot.expert!]!;
      const model = reverted(source.index, t.slot.layer) ? inputs.base : source;
      const input = inputTensor(model, { role: expertRole, layer: t.slot.layer! }, t.shape, t.name);
      // mergekit applies residual_scale to down_proj only (`is_residual="down_proj" in tensor_name`).
      const scale = role === 'expert_down' || role === 'shared_expert_down' ? (spec?.residualScale ?? null) : null;
      const noiseScale = spec?.noiseScale ?? null;
      const raw = input.dtype === dtype && noiseScale === null && scale === null;
      op = { kind: 'expert', model: model.index, input: input.name, raw, noiseScale, scale };
    } else {
      const baseArch = getArchitecture(base.modelType);
      const isBias = role === 'attn_q_bias' || role === 'attn_k_bias' || role === 'attn_v_bias';
      if (isBias && baseArch.names[role] === undefined) {
        // Qwen2-MoE wants q/k/v biases; llama/mistral inputs have none: zeros (mergekit/moe/qwen.py).
        op = { kind: 'zeros' };
      } else if (isBias && !base.attentionBias) {
        op = { kind: 'zeros' };
      } else {
        const input = inputTensor(inputs.base, t.slot, t.shape, t.name);
        const sw = recipe.sharedWeights.method;
        if (sw === 'base' || expertModels.every((i) => i === inputs.base.index)) {
          op = { kind: 'copy', model: inputs.base.index, input: input.name, raw: input.dtype === dtype };
        } else {
          // An enhanced expert's reverted layer takes part as the base (a zero task vector).
          const models = expertModels.map((m) => (reverted(m, t.slot.layer) ? inputs.base.index : m));
          for (const m of models) inputTensor(inputs.models[m]!, t.slot, t.shape, t.name);
          op = sw === 'average' ? { kind: 'average', models, input: input.name } : { kind: 'merge', method: sw, base: inputs.base.index, models, input: input.name };
        }
      }
    }
    tensors.push({ name: t.name, slot: t.slot, shape: t.shape, numel, dtype, bytes, op });
  }

  const shardSizeBytes = shardSizeOf(recipe, options.shardSize);
  const shards = planShards(tensors.map((t) => ({ name: t.name, dtype: t.dtype as Dtype, shape: t.shape })), shardSizeBytes);
  const totalBytes = tensors.reduce((a, t) => a + t.bytes, 0);
  const chunkElements = options.chunkElements ?? DEFAULT_CHUNK_ELEMENTS;

  // Peak memory: the gate phase (engine weights in float32) and the write phase
  // (one tensor's chunk buffers at a time) do not overlap.
  let engine: BuildPlan['engine'];
  if (strategy.needsForward) {
    const limit = options.maxResidentBytes ?? DEFAULT_MAX_RESIDENT_BYTES;
    const all = inputs.base.description.tensors;
    let total = 0;
    const perLayer = new Map<number, number>();
    let globalBytes = 0;
    for (const t of expectedTensors(base)) {
      const h = all.get(t.name);
      const b = numelOf(h?.shape ?? t.shape) * 4;
      total += b;
      if (t.slot.layer === undefined) globalBytes += b;
      else perLayer.set(t.slot.layer, (perLayer.get(t.slot.layer) ?? 0) + b);
    }
    const streamed = total > limit;
    // ×2: the engine decodes weights into JS float32 arrays, then copies them into the
    // backend's heap, which does not shrink (measured: 1.40 GB peak RSS for 705 MB here).
    engine = { bytes: 2 * (streamed ? globalBytes + Math.max(0, ...perLayer.values()) : total), streamed };
  } else if (strategy.needsPrompts) {
    const emb = expectedTensors(base).find((t) => t.slot.role === 'embed')!;
    engine = { bytes: numelOf(emb.shape) * 4, streamed: false };
  }
  const writePhase = Math.max(
    0,
    ...tensors.map((t) => {
      switch (t.op.kind) {
        case 'copy':
        case 'expert':
          return t.op.raw ? 2 * COPY_SLICE_BYTES : Math.min(chunkElements, t.numel) * (8 + DTYPE_BYTES[dtype]) + 2 * COPY_SLICE_BYTES;
        case 'merge':
        case 'average':
          return Math.min(chunkElements, t.numel) * 4 * (t.op.models.length + 3);
        default:
          return t.bytes + t.numel * 4;
      }
    }),
  );
  const gateBytes = layers.length * gateExperts.length * base.hiddenSize * 4;
  const peakMemoryBytes = Math.max(engine?.bytes ?? 0, writePhase) + gateBytes;

  const warnings: string[] = [];
  const E = recipe.experts.length;
  // mergekit/moe/mixtral.py warns the same: llama.cpp's converter needs a power of two.
  if ((E & (E - 1)) !== 0) warnings.push(`${E} experts is not a power of two: llama.cpp will not load this model`);
  if (hasSharedExpert && !sharedWithPrompts) warnings.push('the shared expert has no prompts: its shared_expert_gate is zeros (sigmoid(0) = 0.5 for every token)');

  return {
    warnings,
    recipe,
    format,
    inputs,
    outputConfig,
    configJson,
    dtype,
    torchDtype,
    seed: options.seed ?? recipe.seed ?? DEFAULT_SEED,
    tensors,
    shards,
    shardSizeBytes,
    totalBytes,
    gate: { mode: recipe.gateMode, strategy, experts: gateExperts, sharedWithPrompts, layers, prompts: prompts.size, forward: strategy.needsForward },
    mergeMethod,
    mergeParams,
    sharedExpertMerge,
    chunkElements,
    peakMemoryBytes,
    engine,
  };
}
