// Qwen3MoeForCausalLM (models/qwen3_moe/modeling_qwen3_moe.py): Qwen3 attention
// (q_norm / k_norm), routed experts without a shared expert.
import { ATTN_O_BIAS, ATTN_QKV_BIASES, DENSE_MLP, LLAMA_BACKBONE, QK_NORMS, QWEN_MOE_EXPERTS } from './common.js';
import { defineArchitecture } from './types.js';

export const qwen3Moe = defineArchitecture({
  family: 'qwen3_moe',
  hfArchitecture: 'Qwen3MoeForCausalLM',
  names: { ...LLAMA_BACKBONE, ...ATTN_QKV_BIASES, ...ATTN_O_BIAS, ...QK_NORMS, ...DENSE_MLP, ...QWEN_MOE_EXPERTS },
});
