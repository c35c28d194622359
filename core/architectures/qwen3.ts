// Qwen3ForCausalLM (models/qwen3/modeling_qwen3.py): q_norm / k_norm per head;
// q/k/v/o biases only with `attention_bias: true`.
import { ATTN_O_BIAS, ATTN_QKV_BIASES, DENSE_MLP, LLAMA_BACKBONE, QK_NORMS } from './common.js';
import { defineArchitecture } from './types.js';

export const qwen3 = defineArchitecture({
  family: 'qwen3',
  hfArchitecture: 'Qwen3ForCausalLM',
  names: { ...LLAMA_BACKBONE, ...ATTN_QKV_BIASES, ...ATTN_O_BIAS, ...QK_NORMS, ...DENSE_MLP },
});
