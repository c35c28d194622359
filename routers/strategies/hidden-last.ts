// gate_mode: hidden_last — mergekit's explicit spelling of `hidden`: last token of
// each prompt at the residual stream entering each layer.
import type { GateContext, GateStrategy } from '../../core/plugins.js';
import { hiddenStateGates } from './prompt-vectors.js';

export const hiddenLastGate: GateStrategy = {
  name: 'hidden_last',
  needsPrompts: true,
  needsForward: true,
  computeGates: (ctx: GateContext) => hiddenStateGates(ctx, 'residual', 'last'),
};
