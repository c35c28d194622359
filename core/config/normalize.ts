// config.json → NormalizedConfig, at the edge. One zod schema per family
// (schemas/families.ts) reads both transformers v4 spellings (`torch_dtype`,
// `rope_theta`, `rope_scaling`) and v5 ones (`dtype`, `rope_parameters`,
// `head_dim: null`, `layer_types`); defaults follow the transformers config classes.
// Errors: unknown model_type / unsupported feature → unknown_architecture; a bad value
// → invalid_config with `path` = the file label and the field named in the message.

import type { z } from 'zod';
import { ARCHITECTURES, isModelFamily } from '../architectures/registry.js';
import { MoeforgeError } from '../errors.js';
import { MOE_DEFAULTS, RULES, SCHEMAS } from './schemas/families.js';
import type { ModelFamily, MoeConfig, NormalizedConfig, RopeConfig, TorchDtype } from './types.js';

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** `got` is given (even as `{ value: undefined }`) when the offending value should be shown. */
function invalid(label: string, field: string, message: string, got?: { value: unknown }): MoeforgeError {
  const gotText = got ? `, got ${describeValue(got.value)}` : '';
  return new MoeforgeError('invalid_config', `${field}: ${message}${gotText}`, { path: label });
}

function unsupported(label: string, message: string): MoeforgeError {
  return new MoeforgeError('unknown_architecture', message, { path: label });
}

type Parsed = z.infer<(typeof SCHEMAS)['qwen2_moe']> & z.infer<(typeof SCHEMAS)['mixtral']>;

/** Parses a raw config.json object. `label` names it in errors (usually the file path). */
export function normalizeConfig(raw: unknown, label: string): NormalizedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new MoeforgeError('invalid_config', `expected a JSON object, got ${describeValue(raw)}`, { path: label });
  }
  const rawObj = raw as Record<string, unknown>;
  const modelType = rawObj.model_type;
  if (modelType === undefined) throw invalid(label, 'model_type', 'missing: cannot tell the architecture');
  if (!isModelFamily(modelType)) {
    throw unsupported(
      label,
      `model_type ${describeValue(modelType)} is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`,
    );
  }
  const family = modelType;
  const result = SCHEMAS[family].safeParse(rawObj);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.map(String).join('.') || '(root)';
    throw invalid(label, field, issue.message, { value: valueAt(rawObj, issue.path) });
  }
  const c = result.data as Parsed;
  const rules = RULES[family];

  if ((c.hidden_act ?? 'silu') !== 'silu') throw unsupported(label, `hidden_act ${describeValue(c.hidden_act)} is not supported (only silu)`);
  if (c.mlp_bias === true) throw unsupported(label, 'mlp_bias: true is not supported');

  const numHeads = c.num_attention_heads;
  const numKvHeads = c.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw invalid(label, 'num_key_value_heads', `must divide num_attention_heads (${numHeads})`, { value: numKvHeads });
  }
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) headDim = c.head_dim;
  else if (c.head_dim === undefined && rules.headDimDefault !== 'derived') headDim = rules.headDimDefault;
  else {
    // head_dim null (v5) or absent: hidden_size // num_attention_heads, as the attention modules compute it.
    if (c.hidden_size % numHeads !== 0) {
      throw invalid(label, 'head_dim', `absent and hidden_size (${c.hidden_size}) is not divisible by num_attention_heads (${numHeads})`);
    }
    headDim = c.hidden_size / numHeads;
  }

  const dtypeV4 = c.torch_dtype ?? undefined;
  const dtypeV5 = c.dtype ?? undefined;
  if (dtypeV4 !== undefined && dtypeV5 !== undefined && dtypeV4 !== dtypeV5) {
    throw invalid(label, 'dtype', `disagrees with torch_dtype (${dtypeV4})`, { value: dtypeV5 });
  }
  const torchDtype: TorchDtype = dtypeV5 ?? dtypeV4 ?? 'float32';

  const numLayers = c.num_hidden_layers;
  const attentionBias = c.attention_bias ?? false;
  const config: NormalizedConfig = {
    modelType: family,
    architecture: c.architectures?.[0] ?? ARCHITECTURES[family].hfArchitecture,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps ?? rules.defaults.rmsNormEps,
    rope: normalizeRope(c, rules.defaults.ropeTheta, label),
    maxPositionEmbeddings: c.max_position_embeddings ?? rules.defaults.maxPositionEmbeddings,
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    attentionBias: rules.qkvBias === 'always' || (rules.qkvBias === 'attention_bias' && attentionBias),
    attentionOutBias: rules.oBias === 'attention_bias' && attentionBias,
    qkNorm: rules.qkNorm,
    slidingWindows: slidingWindows(c, family, numLayers, label),
    hiddenAct: 'silu',
    bosTokenId: c.bos_token_id === undefined ? rules.defaults.bosTokenId : c.bos_token_id,
    eosTokenId: c.eos_token_id === undefined ? rules.defaults.eosTokenId : c.eos_token_id,
    torchDtype,
    moe: normalizeMoe(c, family, numLayers, label),
    raw: Object.freeze({ ...rawObj }),
  };
  return config;
}

const SUPPORTED_ROPE = new Set(['default', 'linear', 'dynamic', 'llama3']);

/**
 * v4: `rope_theta` + `rope_scaling` ({rope_type|type, factor, …} or null);
 * v5: `rope_parameters` ({rope_type, rope_theta, factor, …}). Follows
 * modeling_rope_utils.py: 'default' needs nothing, 'linear' / 'dynamic' a factor,
 * 'llama3' factor, low/high_freq_factor and original_max_position_embeddings.
 */
function normalizeRope(c: Parsed, defaultTheta: number, label: string): RopeConfig {
  const params = c.rope_parameters ?? undefined;
  const scaling = c.rope_scaling ?? undefined;
  const field = params ? 'rope_parameters' : 'rope_scaling';
  const dict = params ?? scaling;
  const theta = params?.rope_theta ?? c.rope_theta ?? scaling?.rope_theta ?? defaultTheta;
  const type = dict?.rope_type ?? dict?.type ?? 'default';
  if (!SUPPORTED_ROPE.has(type)) throw unsupported(label, `rope type ${describeValue(type)} is not supported (supported: default, linear, dynamic, llama3)`);
  const rope: RopeConfig = { theta, type: type as RopeConfig['type'] };
  if (type === 'default') return rope;
  const need = (key: 'factor' | 'low_freq_factor' | 'high_freq_factor' | 'original_max_position_embeddings'): number => {
    const v = dict?.[key];
    if (v === undefined) throw invalid(label, `${field}.${key}`, `missing: rope type ${type} needs it`);
    return v;
  };
  rope.factor = need('factor');
  if (type === 'llama3') {
    rope.lowFreqFactor = need('low_freq_factor');
    rope.highFreqFactor = need('high_freq_factor');
    rope.originalMaxPositionEmbeddings = need('original_max_position_embeddings');
  } else if (type === 'dynamic' && dict?.original_max_position_embeddings !== undefined) {
    rope.originalMaxPositionEmbeddings = dict.original_max_position_embeddings;
  }
  return rope;
}

/**
 * The attention window of every layer. v5 `layer_types` wins when present; otherwise
 * Mistral/Mixtral apply `sliding_window` (when set) everywhere, and the Qwen families only
 * when `use_sliding_window` is true and only from layer `max_window_layers` on
 * (Qwen2Config.__init__ derives layer_types exactly so).
 */
function slidingWindows(c: Parsed, family: ModelFamily, numLayers: number, label: string): (number | null)[] {
  const rules = RULES[family];
  let window: number | null;
  if (rules.sliding === 'qwen') {
    window = c.use_sliding_window === true ? (c.sliding_window === undefined ? rules.slidingDefault : c.sliding_window) : null;
  } else {
    window = c.sliding_window === undefined ? rules.slidingDefault : c.sliding_window;
  }
  const layerTypes = c.layer_types ?? undefined;
  if (layerTypes) {
    if (layerTypes.length !== numLayers) {
      throw invalid(label, 'layer_types', `expected ${numLayers} entries (num_hidden_layers), got ${layerTypes.length}`);
    }
    return layerTypes.map((t) => (t === 'sliding_attention' ? window : null));
  }
  if (rules.sliding === 'qwen') {
    const first = c.max_window_layers ?? 28;
    return Array.from({ length: numLayers }, (_, i) => (window !== null && i >= first ? window : null));
  }
  return Array.from({ length: numLayers }, () => window);
}

function normalizeMoe(c: Parsed, family: ModelFamily, numLayers: number, label: string): MoeConfig | null {
  const aux = c.router_aux_loss_coef ?? MOE_DEFAULTS.routerAuxLossCoef;
  let moe: MoeConfig;
  if (family === 'mixtral') {
    moe = {
      numExperts: c.num_local_experts ?? MOE_DEFAULTS.mixtral.numExperts,
      expertsPerToken: c.num_experts_per_tok ?? MOE_DEFAULTS.mixtral.expertsPerToken,
      // MixtralBlockSparseTop2MLP: every expert is intermediate_size wide; routing always renormalises.
      expertIntermediateSize: c.intermediate_size,
      normTopkProb: true,
      sharedExpertIntermediateSize: null,
      decoderSparseStep: 1,
      mlpOnlyLayers: [],
      routerAuxLossCoef: aux,
    };
  } else if (family === 'qwen2_moe' || family === 'qwen3_moe') {
    const d = MOE_DEFAULTS[family];
    moe = {
      numExperts: c.num_experts ?? d.numExperts,
      expertsPerToken: c.num_experts_per_tok ?? d.expertsPerToken,
      expertIntermediateSize: c.moe_intermediate_size ?? d.moeIntermediateSize,
      normTopkProb: c.norm_topk_prob ?? false,
      sharedExpertIntermediateSize:
        family === 'qwen2_moe' ? (c.shared_expert_intermediate_size ?? MOE_DEFAULTS.qwen2_moe.sharedExpertIntermediateSize) : null,
      decoderSparseStep: c.decoder_sparse_step ?? 1,
      mlpOnlyLayers: [...new Set(c.mlp_only_layers ?? [])].sort((a, b) => a - b),
      routerAuxLossCoef: aux,
    };
    const bad = moe.mlpOnlyLayers.find((l) => l >= numLayers);
    if (bad !== undefined) throw invalid(label, 'mlp_only_layers', `layer ${bad} does not exist (num_hidden_layers is ${numLayers})`);
  } else {
    return null;
  }
  const expertsField = family === 'mixtral' ? 'num_local_experts' : 'num_experts';
  if (moe.numExperts > 0 && moe.expertsPerToken > moe.numExperts) {
    throw invalid(label, 'num_experts_per_tok', `must be at most ${expertsField} (${moe.numExperts})`, { value: moe.expertsPerToken });
  }
  return moe;
}
