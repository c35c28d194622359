// Mixtral output (MixtralForCausalLM, models/mixtral/modeling_mixtral.py), as
// mergekit-moe writes it (mergekit/moe/mixtral.py): llama or mistral inputs, no shared
// expert, every layer sparse, the dense MLP of expert e becoming
// `block_sparse_moe.experts.e.{w1,w2,w3}` (w1 = gate_proj, w2 = down_proj, w3 = up_proj).
// mergekit prefers this format whenever it applies.
import type { NormalizedConfig } from '../../core/config/types.js';
import type { FormatSupportInput, MoeShape, OutputFormat } from '../../core/plugins.js';
import { baseConfigJson, commonUnsupportedReason, moeOutputBase, moeSettings, ROUTER_AUX_LOSS_COEF } from './hf-config.js';

// MixtralConfig's default (configuration_mixtral.py); only used in training.

export const mixtralFormat: OutputFormat = {
  name: 'mixtral',
  displayName: 'Mixtral',
  family: 'mixtral',
  unsupportedReason(input: FormatSupportInput): string | undefined {
    if (input.numSharedExperts > 0) return 'Mixtral does not support shared experts';
    const why = commonUnsupportedReason(input.families, ['llama', 'mistral'], 'Mixtral');
    if (why) return why;
    // MixtralAttention has no biases: a llama with attention_bias: true cannot be carried over.
    if (input.base.attentionBias || input.base.attentionOutBias) return 'Mixtral has no attention biases but the base model has them';
    return undefined;
  },
  outputConfig(base: NormalizedConfig, shape: MoeShape): NormalizedConfig {
    return {
      ...moeOutputBase(base),
      modelType: 'mixtral',
      architecture: 'MixtralForCausalLM',
      moe: moeSettings(base, shape, null),
    };
  },
  synthesizeConfig(base: NormalizedConfig, shape: MoeShape, dtype: string): Record<string, unknown> {
    const out = baseConfigJson(base, 'MixtralForCausalLM', 'mixtral', dtype);
    for (const k of ['mlp_bias', 'attention_bias', 'pretraining_tp']) delete out[k];
    return {
      ...out,
      num_local_experts: shape.numExperts,
      num_experts_per_tok: shape.expertsPerToken,
      router_aux_loss_coef: ROUTER_AUX_LOSS_COEF,
      output_router_logits: false,
      // mergekit sets sliding_window = None: the llama/mistral inputs attend fully.
      sliding_window: null,
    };
  },
};
