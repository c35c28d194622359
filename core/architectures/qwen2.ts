// Qwen2ForCausalLM (models/qwen2/modeling_qwen2.py): q/k/v always biased, o_proj not.
import { ATTN_QKV_BIASES, DENSE_MLP, LLAMA_BACKBONE } from './common.js';
import { defineArchitecture } from './types.js';

export const qwen2 = defineArchitecture({
  family: 'qwen2',
  hfArchitecture: 'Qwen2ForCausalLM',
  names: { ...LLAMA_BACKBONE, ...ATTN_QKV_BIASES, ...DENSE_MLP },
});
