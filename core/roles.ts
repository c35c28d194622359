// Tensor roles are the shared language of moeforge (as llama.cpp's tensor table is
// for its converter): assembly, merging and validation switch on a role, never on
// substrings of a tensor name. Architecture files (core/architectures/) map roles
// to the Hugging Face names of one family.

export type TensorRole =
  | 'embed' // model.embed_tokens.weight
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_o'
  | 'attn_q_bias'
  | 'attn_k_bias'
  | 'attn_v_bias'
  | 'attn_o_bias' // llama / qwen3 with attention_bias: true (o_proj bias=config.attention_bias)
  | 'attn_q_norm' // qwen3: per-head RMSNorm on q
  | 'attn_k_norm' // qwen3: per-head RMSNorm on k
  | 'input_norm'
  | 'post_attn_norm'
  | 'mlp_gate' // dense FFN (or a Qwen2-MoE dense layer)
  | 'mlp_up'
  | 'mlp_down'
  | 'router' // MoE gate [E, d]
  | 'expert_gate' // routed expert FFN (w1 in Mixtral)
  | 'expert_up' // w3
  | 'expert_down' // w2
  | 'shared_expert_gate_proj' // Qwen2-MoE shared expert FFN
  | 'shared_expert_up'
  | 'shared_expert_down'
  | 'shared_expert_gate' // Qwen2-MoE sigmoid gate of the shared expert [1, d]
  | 'final_norm'
  | 'lm_head';

export type RoleScope = 'global' | 'layer' | 'expert';
export type RoleKind = 'linear' | 'bias' | 'norm' | 'embed' | 'router';

export interface RoleInfo {
  scope: RoleScope;
  kind: RoleKind;
  /** The mergekit filter group a parameter filter like `self_attn` or `mlp` matches. */
  group: 'embed' | 'self_attn' | 'mlp' | 'norm' | 'router' | 'lm_head';
}

export const ROLE_INFO: Record<TensorRole, RoleInfo> = {
  embed: { scope: 'global', kind: 'embed', group: 'embed' },
  attn_q: { scope: 'layer', kind: 'linear', group: 'self_attn' },
  attn_k: { scope: 'layer', kind: 'linear', group: 'self_attn' },
  attn_v: { scope: 'layer', kind: 'linear', group: 'self_attn' },
  attn_o: { scope: 'layer', kind: 'linear', group: 'self_attn' },
  attn_q_bias: { scope: 'layer', kind: 'bias', group: 'self_attn' },
  attn_k_bias: { scope: 'layer', kind: 'bias', group: 'self_attn' },
  attn_v_bias: { scope: 'layer', kind: 'bias', group: 'self_attn' },
  attn_o_bias: { scope: 'layer', kind: 'bias', group: 'self_attn' },
  attn_q_norm: { scope: 'layer', kind: 'norm', group: 'self_attn' },
  attn_k_norm: { scope: 'layer', kind: 'norm', group: 'self_attn' },
  input_norm: { scope: 'layer', kind: 'norm', group: 'norm' },
  post_attn_norm: { scope: 'layer', kind: 'norm', group: 'norm' },
  mlp_gate: { scope: 'layer', kind: 'linear', group: 'mlp' },
  mlp_up: { scope: 'layer', kind: 'linear', group: 'mlp' },
  mlp_down: { scope: 'layer', kind: 'linear', group: 'mlp' },
  router: { scope: 'layer', kind: 'router', group: 'router' },
  expert_gate: { scope: 'expert', kind: 'linear', group: 'mlp' },
  expert_up: { scope: 'expert', kind: 'linear', group: 'mlp' },
  expert_down: { scope: 'expert', kind: 'linear', group: 'mlp' },
  shared_expert_gate_proj: { scope: 'layer', kind: 'linear', group: 'mlp' },
  shared_expert_up: { scope: 'layer', kind: 'linear', group: 'mlp' },
  shared_expert_down: { scope: 'layer', kind: 'linear', group: 'mlp' },
  shared_expert_gate: { scope: 'layer', kind: 'router', group: 'router' },
  final_norm: { scope: 'global', kind: 'norm', group: 'norm' },
  lm_head: { scope: 'global', kind: 'linear', group: 'lm_head' },
};

/** A tensor's place in a model: its role, and its layer / expert where the role has one. */
export interface TensorSlot {
  role: TensorRole;
  layer?: number;
  expert?: number;
}
