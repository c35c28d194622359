// What every MoE output's config.json shares: the base model's config.json carried
// through (as mergekit does with `XConfig(**base_config.to_dict())`, so keys we do
// not know survive), re-spelled in transformers v4 (`torch_dtype`, `rope_theta`,
// `rope_scaling`), which v5 reads too (DESIGN.md §3).
import type { MoeConfig, NormalizedConfig, RopeConfig } from '../../core/config/types.js';
import type { MoeShape } from '../../core/plugins.js';

// Keys rewritten below, or meaningless for the output (v5's per-layer lists describe the dense base).
const DROPPED = ['architectures', 'model_type', 'dtype', 'torch_dtype', 'rope_parameters', 'layer_types', '_name_or_path', 'auto_map', 'transformers_version'];

function ropeScaling(rope: RopeConfig): Record<string, unknown> | null {
  if (rope.type === 'default') return null;
  const out: Record<string, unknown> = { rope_type: rope.type, type: rope.type };
  if (rope.factor !== undefined) out.factor = rope.factor;
  if (rope.lowFreqFactor !== undefined) out.low_freq_factor = rope.lowFreqFactor;
  if (rope.highFreqFactor !== undefined) out.high_freq_factor = rope.highFreqFactor;
  if (rope.originalMaxPositionEmbeddings !== undefined) out.original_max_position_embeddings = rope.originalMaxPositionEmbeddings;
  return out;
}

export function baseConfigJson(base: NormalizedConfig, hfArchitecture: string, modelType: string, dtype: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base.raw)) if (!DROPPED.includes(k)) out[k] = v;
  Object.assign(out, {
    architectures: [hfArchitecture],
    model_type: modelType,
    vocab_size: base.vocabSize,
    hidden_size: base.hiddenSize,
    intermediate_size: base.intermediateSize,
    num_hidden_layers: base.numLayers,
    num_attention_heads: base.numHeads,
    num_key_value_heads: base.numKvHeads,
    head_dim: base.headDim,
    rms_norm_eps: base.rmsNormEps,
    rope_theta: base.rope.theta,
    rope_scaling: ropeScaling(base.rope),
    max_position_embeddings: base.maxPositionEmbeddings,
    tie_word_embeddings: base.tieWordEmbeddings,
    hidden_act: base.hiddenAct,
    bos_token_id: base.bosTokenId,
    eos_token_id: base.eosTokenId,
    torch_dtype: dtype,
  });
  return out;
}

/** The dense-family checks all formats share; a string says why not. */
export function commonUnsupportedReason(families: string[], allowed: readonly string[], displayName: string): string | undefined {
  if (new Set(families).size !== 1) return `${displayName} requires all input models to have the same architecture (got ${[...new Set(families)].join(', ')})`;
  if (!allowed.includes(families[0]!)) return `${displayName} requires ${allowed.join(' or ')} input models (got ${families[0]})`;
  return undefined;
}

/** The output's NormalizedConfig fields every MoE format sets the same way. */
export function moeOutputBase(base: NormalizedConfig): NormalizedConfig {
  return { ...base, slidingWindows: base.slidingWindows.map(() => null) };
}

/** transformers' default `router_aux_loss_coef` for Mixtral and the Qwen MoEs; the builder writes it unchanged. */
export const ROUTER_AUX_LOSS_COEF = 0.001;

/**
 * The MoE settings every format gives its output: one router per layer over all experts,
 * top-k renormalised, experts as wide as the base's FFN; `sharedExpertIntermediateSize`
 * null except for formats with a shared expert (Qwen2-MoE).
 */
export function moeSettings(base: NormalizedConfig, shape: MoeShape, sharedExpertIntermediateSize: number | null): MoeConfig {
  return {
    numExperts: shape.numExperts,
    expertsPerToken: shape.expertsPerToken,
    expertIntermediateSize: base.intermediateSize,
    normTopkProb: true,
    sharedExpertIntermediateSize,
    decoderSparseStep: 1,
    mlpOnlyLayers: [],
    routerAuxLossCoef: ROUTER_AUX_LOSS_COEF,
  };
}
