// gate_mode: random — mergekit's `torch.randn((layers, experts, hidden))`: N(0, 1)
// entries, not normalised. Drawn from the build's seeded Rng, one derived stream per
// layer, so a build is reproducible and independent of layer order.
import type { GateContext, GateStrategy } from '../../core/plugins.js';

export const randomGate: GateStrategy = {
  name: 'random',
  needsPrompts: false,
  needsForward: false,
  async computeGates(ctx: GateContext): Promise<Float32Array[]> {
    const size = ctx.experts.length * ctx.config.hiddenSize;
    return ctx.layers.map((layer) => ctx.rng.derive(`gate.random.layer.${layer}`).fillNormal(new Float32Array(size)));
  },
};
