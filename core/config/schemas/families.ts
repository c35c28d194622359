// One zod schema per family (each a loose object: HF configs carry many keys we do
// not read; they stay in `raw`), plus the per-family conventions and defaults of the
// transformers configuration classes (configuration_<family>.py, v4.5x and v5).
import { z } from 'zod';
import type { ModelFamily } from '../types.js';
import { baseShape, bool, intList, nonnegInt, nonnegNum, posInt } from './fields.js';

export interface FamilyRules {
  /** Defaults of the transformers config class for keys a config.json may omit. */
  defaults: { ropeTheta: number; rmsNormEps: number; maxPositionEmbeddings: number; bosTokenId: number | null; eosTokenId: number | null };
  /** Missing head_dim: Qwen3Config defaults it to 128; the others derive hidden / heads. */
  headDimDefault: 'derived' | number;
  /** q/k/v biases: always (Qwen2Attention), with `attention_bias` (Llama, Qwen3), never (Mistral, Mixtral). */
  qkvBias: 'always' | 'attention_bias' | 'never';
  /** o_proj bias: `attention_bias` in LlamaAttention / Qwen3Attention, never in the others. */
  oBias: 'attention_bias' | 'never';
  qkNorm: boolean;
  /**
   * 'all': `sliding_window` (when set) applies to every layer (Mistral, Mixtral; MistralConfig
   * defaults it to 4096 when the key is absent). 'qwen': only with `use_sliding_window`, and only
   * for layers ≥ `max_window_layers` (Qwen2Config: layer_types derived that way).
   */
  sliding: 'all' | 'qwen';
  slidingDefault: number | null;
}

const moeQwenShape = {
  num_experts: nonnegInt().optional(),
  num_experts_per_tok: posInt().optional(),
  moe_intermediate_size: posInt().optional(),
  norm_topk_prob: bool().optional(),
  decoder_sparse_step: posInt().optional(),
  mlp_only_layers: intList().nullish(),
  router_aux_loss_coef: nonnegNum().optional(),
};

export const SCHEMAS = {
  llama: z.looseObject(baseShape),
  mistral: z.looseObject(baseShape),
  qwen2: z.looseObject(baseShape),
  qwen3: z.looseObject(baseShape),
  mixtral: z.looseObject({
    ...baseShape,
    num_local_experts: posInt().optional(),
    num_experts_per_tok: posInt().optional(),
    router_aux_loss_coef: nonnegNum().optional(),
  }),
  qwen2_moe: z.looseObject({ ...baseShape, ...moeQwenShape, shared_expert_intermediate_size: nonnegInt().optional() }),
  qwen3_moe: z.looseObject({ ...baseShape, ...moeQwenShape }),
} satisfies Record<ModelFamily, z.ZodType>;

const QWEN_DEFAULTS = { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, bosTokenId: null, eosTokenId: null };

export const RULES: Record<ModelFamily, FamilyRules> = {
  llama: {
    defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 2048, bosTokenId: 1, eosTokenId: 2 },
    headDimDefault: 'derived',
    qkvBias: 'attention_bias',
    oBias: 'attention_bias',
    qkNorm: false,
    sliding: 'all',
    slidingDefault: null,
  },
  mistral: {
    defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 4096 * 32, bosTokenId: 1, eosTokenId: 2 },
    headDimDefault: 'derived',
    qkvBias: 'never',
    oBias: 'never',
    qkNorm: false,
    sliding: 'all',
    slidingDefault: 4096,
  },
  mixtral: {
    defaults: { ropeTheta: 1e6, rmsNormEps: 1e-5, maxPositionEmbeddings: 4096 * 32, bosTokenId: 1, eosTokenId: 2 },
    headDimDefault: 'derived',
    qkvBias: 'never',
    oBias: 'never',
    qkNorm: false,
    sliding: 'all',
    slidingDefault: null,
  },
  qwen2: { defaults: QWEN_DEFAULTS, headDimDefault: 'derived', qkvBias: 'always', oBias: 'never', qkNorm: false, sliding: 'qwen', slidingDefault: 4096 },
  qwen2_moe: { defaults: QWEN_DEFAULTS, headDimDefault: 'derived', qkvBias: 'always', oBias: 'never', qkNorm: false, sliding: 'qwen', slidingDefault: 4096 },
  qwen3: { defaults: QWEN_DEFAULTS, headDimDefault: 128, qkvBias: 'attention_bias', oBias: 'attention_bias', qkNorm: true, sliding: 'qwen', slidingDefault: 4096 },
  qwen3_moe: { defaults: QWEN_DEFAULTS, headDimDefault: 'derived', qkvBias: 'attention_bias', oBias: 'attention_bias', qkNorm: true, sliding: 'qwen', slidingDefault: 4096 },
};

/** transformers' MoE defaults (MixtralConfig, Qwen2MoeConfig, Qwen3MoeConfig). */
export const MOE_DEFAULTS = {
  mixtral: { numExperts: 8, expertsPerToken: 2 },
  qwen2_moe: { numExperts: 60, expertsPerToken: 4, moeIntermediateSize: 1408, sharedExpertIntermediateSize: 5632 },
  qwen3_moe: { numExperts: 128, expertsPerToken: 8, moeIntermediateSize: 768 },
  routerAuxLossCoef: 0.001,
} as const;
