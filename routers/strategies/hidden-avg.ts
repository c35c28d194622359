// gate_mode: hidden_avg — mergekit's mean over the prompt's tokens (router.py,
// get_hidden_states(average=True)), at the residual stream entering each layer.
// mergekit batches prompts with left padding and averages over the padded length,
// so with prompts of different lengths its pad positions leak into the mean; moeforge
// runs prompts unpadded and averages over each prompt's own tokens (identical when
// the prompts of an expert have one length, as in a single-prompt expert).
import type { GateContext, GateStrategy } from '../../core/plugins.js';
import { hiddenStateGates } from './prompt-vectors.js';

export const hiddenAvgGate: GateStrategy = {
  name: 'hidden_avg',
  needsPrompts: true,
  needsForward: true,
  computeGates: (ctx: GateContext) => hiddenStateGates(ctx, 'residual', 'mean'),
};
