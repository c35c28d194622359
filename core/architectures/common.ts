// Names shared by every Llama-derived family (modeling_llama.py and its copies:
// mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe all keep these).
import type { TensorRole } from '../roles.js';

export const LLAMA_BACKBONE: Partial<Record<TensorRole, string>> = {
  embed: 'model.embed_tokens.weight',
  attn_q: 'model.layers.{layer}.self_attn.q_proj.weight',
  attn_k: 'model.layers.{layer}.self_attn.k_proj.weight',
  attn_v: 'model.layers.{layer}.self_attn.v_proj.weight',
  attn_o: 'model.layers.{layer}.self_attn.o_proj.weight',
  input_norm: 'model.layers.{layer}.input_layernorm.weight',
  post_attn_norm: 'model.layers.{layer}.post_attention_layernorm.weight',
  final_norm: 'model.norm.weight',
  lm_head: 'lm_head.weight',
};

export const ATTN_QKV_BIASES: Partial<Record<TensorRole, string>> = {
  attn_q_bias: 'model.layers.{layer}.self_attn.q_proj.bias',
  attn_k_bias: 'model.layers.{layer}.self_attn.k_proj.bias',
  attn_v_bias: 'model.layers.{layer}.self_attn.v_proj.bias',
};

/** `attention_bias: true` in LlamaAttention / Qwen3Attention also biases o_proj. */
export const ATTN_O_BIAS: Partial<Record<TensorRole, string>> = {
  attn_o_bias: 'model.layers.{layer}.self_attn.o_proj.bias',
};

/** Qwen3Attention: RMSNorm over head_dim on q and k before RoPE. */
export const QK_NORMS: Partial<Record<TensorRole, string>> = {
  attn_q_norm: 'model.layers.{layer}.self_attn.q_norm.weight',
  attn_k_norm: 'model.layers.{layer}.self_attn.k_norm.weight',
};

/** The dense SwiGLU FFN (LlamaMLP); also the `mlp_only_layers` of Qwen-MoE models. */
export const DENSE_MLP: Partial<Record<TensorRole, string>> = {
  mlp_gate: 'model.layers.{layer}.mlp.gate_proj.weight',
  mlp_up: 'model.layers.{layer}.mlp.up_proj.weight',
  mlp_down: 'model.layers.{layer}.mlp.down_proj.weight',
};

/** Qwen2MoeSparseMoeBlock / Qwen3MoeSparseMoeBlock routed experts, as saved by v4 and v5. */
export const QWEN_MOE_EXPERTS: Partial<Record<TensorRole, string>> = {
  router: 'model.layers.{layer}.mlp.gate.weight',
  expert_gate: 'model.layers.{layer}.mlp.experts.{expert}.gate_proj.weight',
  expert_up: 'model.layers.{layer}.mlp.experts.{expert}.up_proj.weight',
  expert_down: 'model.layers.{layer}.mlp.experts.{expert}.down_proj.weight',
};
