// gate_mode: router_input — moeforge's variant of `hidden`: the vectors are taken
// where the MoE router actually reads, the output of each layer's
// post_attention_layernorm (modeling_mixtral.py: `hidden_states =
// self.post_attention_layernorm(hidden_states); self.block_sparse_moe(hidden_states)`),
// instead of the un-normalised residual stream entering the layer. Same formula
// otherwise (last token, mean over prompts, minus negatives, unit norm).
import type { GateContext, GateStrategy } from '../../core/plugins.js';
import { hiddenStateGates } from './prompt-vectors.js';

export const routerInputGate: GateStrategy = {
  name: 'router_input',
  needsPrompts: true,
  needsForward: true,
  computeGates: (ctx: GateContext) => hiddenStateGates(ctx, 'router_input', 'last'),
};
