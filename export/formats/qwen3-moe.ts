// Qwen3-MoE output (Qwen3MoeForCausalLM, models/qwen3_moe/modeling_qwen3_moe.py),
// following mergekit/moe/qwen3.py: qwen3 inputs only, no shared expert, every layer
// sparse, norm_topk_prob true, q_norm/k_norm kept from the base.
import type { NormalizedConfig } from '../../core/config/types.js';
import type { FormatSupportInput, MoeShape, OutputFormat } from '../../core/plugins.js';
import { baseConfigJson, commonUnsupportedReason, moeOutputBase, moeSettings, ROUTER_AUX_LOSS_COEF } from './hf-config.js';

// Qwen3MoeConfig's default (configuration_qwen3_moe.py).

export const qwen3MoeFormat: OutputFormat = {
  name: 'qwen3_moe',
  displayName: 'Qwen3 MoE',
  family: 'qwen3_moe',
  unsupportedReason(input: FormatSupportInput): string | undefined {
    if (input.numSharedExperts > 0) return 'Qwen3 MoE does not support shared experts';
    return commonUnsupportedReason(input.families, ['qwen3'], 'Qwen3 MoE');
  },
  outputConfig(base: NormalizedConfig, shape: MoeShape): NormalizedConfig {
    return {
      ...moeOutputBase(base),
      modelType: 'qwen3_moe',
      architecture: 'Qwen3MoeForCausalLM',
      moe: moeSettings(base, shape, null),
    };
  },
  synthesizeConfig(base: NormalizedConfig, shape: MoeShape, dtype: string): Record<string, unknown> {
    const out = baseConfigJson(base, 'Qwen3MoeForCausalLM', 'qwen3_moe', dtype);
    return {
      ...out,
      num_experts: shape.numExperts,
      num_experts_per_tok: shape.expertsPerToken,
      moe_intermediate_size: base.intermediateSize,
      norm_topk_prob: true,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
      router_aux_loss_coef: ROUTER_AUX_LOSS_COEF,
      output_router_logits: false,
      use_sliding_window: false,
      sliding_window: null,
      attention_bias: base.attentionBias,
    };
  },
};
