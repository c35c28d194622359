// Qwen2MoeForCausalLM (models/qwen2_moe/modeling_qwen2_moe.py): routed experts, an
// always-on shared expert scaled by sigmoid(shared_expert_gate(x)), q/k/v biases,
// and dense `mlp.*_proj` layers where `mlp_only_layers` / `decoder_sparse_step` say.
import { ATTN_QKV_BIASES, DENSE_MLP, LLAMA_BACKBONE, QWEN_MOE_EXPERTS } from './common.js';
import { defineArchitecture } from './types.js';

export const qwen2Moe = defineArchitecture({
  family: 'qwen2_moe',
  hfArchitecture: 'Qwen2MoeForCausalLM',
  names: {
    ...LLAMA_BACKBONE,
    ...ATTN_QKV_BIASES,
    ...DENSE_MLP,
    ...QWEN_MOE_EXPERTS,
    shared_expert_gate_proj: 'model.layers.{layer}.mlp.shared_expert.gate_proj.weight',
    shared_expert_up: 'model.layers.{layer}.mlp.shared_expert.up_proj.weight',
    shared_expert_down: 'model.layers.{layer}.mlp.shared_expert.down_proj.weight',
    shared_expert_gate: 'model.layers.{layer}.mlp.shared_expert_gate.weight',
  },
});
