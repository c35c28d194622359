// Qwen2-MoE output (Qwen2MoeForCausalLM, models/qwen2_moe/modeling_qwen2_moe.py),
// following mergekit/moe/qwen.py: llama, mistral or qwen2 inputs, every layer sparse
// (decoder_sparse_step 1), norm_topk_prob true, routed experts and the shared expert
// as wide as the inputs' MLP, zero q/k/v biases where the inputs have none.
// mergekit demands exactly one shared expert with prompts; moeforge also accepts none
// (the base's MLP becomes the shared expert) and a shared expert without prompts
// (its shared_expert_gate is then zeros: sigmoid(0) = 0.5 for every token).
import type { NormalizedConfig } from '../../core/config/types.js';
import type { FormatSupportInput, MoeShape, OutputFormat } from '../../core/plugins.js';
import { baseConfigJson, commonUnsupportedReason, moeOutputBase, moeSettings, ROUTER_AUX_LOSS_COEF } from './hf-config.js';

// Qwen2MoeConfig's default (configuration_qwen2_moe.py).

export const qwen2MoeFormat: OutputFormat = {
  name: 'qwen2_moe',
  displayName: 'Qwen MoE',
  family: 'qwen2_moe',
  unsupportedReason(input: FormatSupportInput): string | undefined {
    if (input.numSharedExperts > 1) return `Qwen MoE takes at most one shared expert (got ${input.numSharedExperts})`;
    const why = commonUnsupportedReason(input.families, ['llama', 'mistral', 'qwen2'], 'Qwen MoE');
    if (why) return why;
    // Qwen2MoeAttention derives head_dim from hidden_size / num_attention_heads and has no o_proj bias.
    if (input.base.headDim * input.base.numHeads !== input.base.hiddenSize) return 'Qwen MoE needs head_dim × num_attention_heads = hidden_size';
    if (input.base.attentionOutBias) return 'Qwen MoE has no o_proj bias but the base model has one';
    return undefined;
  },
  outputConfig(base: NormalizedConfig, shape: MoeShape): NormalizedConfig {
    return {
      ...moeOutputBase(base),
      modelType: 'qwen2_moe',
      architecture: 'Qwen2MoeForCausalLM',
      attentionBias: true,
      attentionOutBias: false,
      qkNorm: false,
      moe: moeSettings(base, shape, shape.sharedExpertIntermediateSize ?? base.intermediateSize),
    };
  },
  synthesizeConfig(base: NormalizedConfig, shape: MoeShape, dtype: string): Record<string, unknown> {
    const out = baseConfigJson(base, 'Qwen2MoeForCausalLM', 'qwen2_moe', dtype);
    for (const k of ['mlp_bias', 'attention_bias', 'pretraining_tp', 'head_dim']) delete out[k];
    return {
      ...out,
      num_experts: shape.numExperts,
      num_experts_per_tok: shape.expertsPerToken,
      moe_intermediate_size: base.intermediateSize,
      shared_expert_intermediate_size: shape.sharedExpertIntermediateSize ?? base.intermediateSize,
      norm_topk_prob: true,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
      router_aux_loss_coef: ROUTER_AUX_LOSS_COEF,
      output_router_logits: false,
      use_sliding_window: false,
      sliding_window: null,
    };
  },
};
