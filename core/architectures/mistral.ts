// MistralForCausalLM (models/mistral/modeling_mistral.py): Llama's tensors, no biases.
import { DENSE_MLP, LLAMA_BACKBONE } from './common.js';
import { defineArchitecture } from './types.js';

export const mistral = defineArchitecture({
  family: 'mistral',
  hfArchitecture: 'MistralForCausalLM',
  names: { ...LLAMA_BACKBONE, ...DENSE_MLP },
});
