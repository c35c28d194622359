// LlamaForCausalLM (transformers models/llama/modeling_llama.py). q/k/v/o biases
// exist only with `attention_bias: true`; expectedTensors decides from the config.
import { ATTN_O_BIAS, ATTN_QKV_BIASES, DENSE_MLP, LLAMA_BACKBONE } from './common.js';
import { defineArchitecture } from './types.js';

export const llama = defineArchitecture({
  family: 'llama',
  hfArchitecture: 'LlamaForCausalLM',
  names: { ...LLAMA_BACKBONE, ...ATTN_QKV_BIASES, ...ATTN_O_BIAS, ...DENSE_MLP },
});
