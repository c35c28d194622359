// A merge is first a plan: every output tensor (from the base model's tensor list, in its
// order), its inputs, the method and its resolved parameters, the output dtype and shard,
// plus sizes and a peak-memory estimate (what `--dry-run` prints). Parameters of every tensor
// are resolved and validated here, before any weight is read.
import type { Dtype } from '../dtypes.js';
import { DTYPE_BYTES } from '../dtypes.js';
import { getArchitecture, parseTensorName } from '../architectures/index.js';
import { planShards, type ShardPlan } from '../checkpoint/writer.js';
import { MoeforgeError } from '../errors.js';
import type { MergeMethod } from '../plugins.js';
import { layerT, resolveParameters, type ParameterScalar } from '../recipe/parameters.js';
import type { MergeConfig } from '../recipe/merge-config.js';
import type { TensorRole } from '../roles.js';
import type { OpenedModel } from './models.js';

export interface PlannedTensor {
  name: string;
  role: TensorRole;
  layer: number | undefined;
  shape: number[];
  numel: number;
  dtype: 'F32' | 'F16' | 'BF16';
  bytes: number;
  global: Record<string, ParameterScalar>;
  perModel: Record<string, ParameterScalar>[];
}

export interface MergePlan {
  method: MergeMethod;
  /** The model whose tensor list, config and (by default) tokenizer the output takes. */
  template: OpenedModel;
  /** The task-vector origin (requiresBase methods), else undefined. */
  base: OpenedModel | undefined;
  /** The inputs the method merges, in config order (the base excluded for task methods). */
  models: OpenedModel[];
  /** Index in config.models of each entry of `models` (for per-model parameters). */
  modelEntries: number[];
  tensors: PlannedTensor[];
  shards: ShardPlan[];
  totalBytes: number;
  chunkSize: number;
  shardSizeBytes: number;
  peakMemoryBytes: number;
  numLayers: number;
}

const AFTER_LAYERS: ReadonlySet<TensorRole> = new Set(['final_norm', 'lm_head']);

export function planMerge(opts: {
  config: MergeConfig;
  method: MergeMethod;
  template: OpenedModel;
  base: OpenedModel | undefined;
  models: OpenedModel[];
  modelEntries: number[];
  shardSizeBytes: number;
  chunkSize: number;
}): MergePlan {
  const { config, method, template, base, models, modelEntries } = opts;
  const numLayers = template.config.numLayers;
  for (const m of [...models, ...(base ? [base] : [])]) {
    if (m.config.modelType !== template.config.modelType || m.config.numLayers !== numLayers || m.config.hiddenSize !== template.config.hiddenSize) {
      throw new MoeforgeError(
        'incompatible_models',
        `${m.config.modelType} with ${m.config.numLayers} layers × ${m.config.hiddenSize} does not match ${template.ref} (${template.config.modelType}, ${numLayers} × ${template.config.hiddenSize})`,
        { path: m.ref },
      );
    }
  }
  config.models.forEach((entry, i) => {
    if (entry.layerRange && (entry.layerRange[0] !== 0 || entry.layerRange[1] !== numLayers)) {
      throw new MoeforgeError(
        'invalid_recipe',
        `layer_range [${entry.layerRange.join(', ')}] does not cover all ${numLayers} layers; only whole-model slices are supported`,
        { path: `slices[0].sources[${i}].layer_range` },
      );
    }
  });

  const arch = getArchitecture(template.config.modelType);
  const outDtype = (name: string, d: Dtype): 'F32' | 'F16' | 'BF16' => {
    if (config.outDtype) return config.outDtype;
    if (d === 'F32' || d === 'F16' || d === 'BF16') return d;
    throw new MoeforgeError('unsupported_format', `dtype ${d} cannot be merged (float32, float16, bfloat16 only)`, { path: name });
  };

  const tensors: PlannedTensor[] = [];
  for (const name of template.checkpoint.names()) {
    const slot = parseTensorName(arch, name);
    if (!slot) {
      throw new MoeforgeError('unknown_architecture', `tensor is not part of the ${arch.family} layout`, { path: `${template.ref}: ${name}` });
    }
    const h = template.checkpoint.header(name);
    for (const m of [...models, ...(base ? [base] : [])]) {
      if (!m.checkpoint.has(name)) throw new MoeforgeError('missing_tensor', `${m.ref} has no such tensor`, { path: name });
      const mh = m.checkpoint.header(name);
      if (mh.shape.join('x') !== h.shape.join('x')) {
        throw new MoeforgeError('shape_mismatch', `${m.ref} has shape [${mh.shape}], ${template.ref} has [${h.shape}]`, { path: name });
      }
    }
    const ctx = { tensorName: name, role: slot.role, t: layerT(slot.layer, numLayers, AFTER_LAYERS.has(slot.role)) };
    const global = resolveParameters(method.globalParameterDefs, [config.parameters], ctx, 'parameters.');
    const perModel = modelEntries.map((entryIndex, i) =>
      resolveParameters(
        method.modelParameterDefs,
        [config.models[entryIndex]?.parameters, config.sliceParameters, config.parameters],
        ctx,
        `models[${entryIndex ?? i}].parameters.`,
      ),
    );
    try {
      method.validate(global, perModel, base !== undefined);
    } catch (e) {
      if (e instanceof MoeforgeError && e.path && !e.path.includes(name)) {
        throw new MoeforgeError(e.code, `${e.message} (tensor ${name})`, { path: e.path, cause: e });
      }
      throw e;
    }
    const dtype = outDtype(name, h.dtype);
    tensors.push({
      name,
      role: slot.role,
      layer: slot.layer,
      shape: h.shape,
      numel: h.numel,
      dtype,
      bytes: h.numel * DTYPE_BYTES[dtype],
      global,
      perModel,
    });
  }
  const shards = planShards(
    tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    opts.shardSizeBytes,
  );
  const totalBytes = tensors.reduce((s, t) => s + t.bytes, 0);
  const largest = tensors.reduce((s, t) => Math.max(s, t.numel), 0);
  const chunk = Math.min(opts.chunkSize, Math.max(1, largest));
  const inputs = models.length + (base ? 1 : 0);
  // One float32 chunk per input, a task-vector copy per model, the output chunk and its encoding,
  // plus two 65536-entry float64 histograms per model for magnitude selection.
  const peakMemoryBytes = chunk * 4 * (inputs + models.length + 2) + models.length * 2 * 2 * 65536 * 8;
  return {
    method,
    template,
    base,
    models,
    modelEntries,
    tensors,
    shards,
    totalBytes,
    chunkSize: opts.chunkSize,
    shardSizeBytes: opts.shardSizeBytes,
    peakMemoryBytes,
    numLayers,
  };
}
