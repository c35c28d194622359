// MixtralForCausalLM (models/mixtral/modeling_mixtral.py), under the per-expert
// names the published checkpoints use (and v5 saves back): w1 = gate_proj,
// w2 = down_proj, w3 = up_proj. Every layer is sparse.
import { LLAMA_BACKBONE } from './common.js';
import { defineArchitecture } from './types.js';

export const mixtral = defineArchitecture({
  family: 'mixtral',
  hfArchitecture: 'MixtralForCausalLM',
  names: {
    ...LLAMA_BACKBONE,
    router: 'model.layers.{layer}.block_sparse_moe.gate.weight',
    expert_gate: 'model.layers.{layer}.block_sparse_moe.experts.{expert}.w1.weight',
    expert_down: 'model.layers.{layer}.block_sparse_moe.experts.{expert}.w2.weight',
    expert_up: 'model.layers.{layer}.block_sparse_moe.experts.{expert}.w3.weight',
  },
});
