// gate_mode: hidden — mergekit's default. Despite the name of its helper's `average`
// flag, `hidden` takes the LAST token's hidden state of each prompt (router.py calls
// get_hidden_states(average=mode == "hidden_avg")), at `output_hidden_states[layer]`,
// the residual stream entering the layer.
import type { GateContext, GateStrategy } from '../../core/plugins.js';
import { hiddenStateGates } from './prompt-vectors.js';

export const hiddenGate: GateStrategy = {
  name: 'hidden',
  needsPrompts: true,
  needsForward: true,
  computeGates: (ctx: GateContext) => hiddenStateGates(ctx, 'residual', 'last'),
};
