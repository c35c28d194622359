// gate_mode: uniform_random — mergekit's "matches default initialization for
// torch.nn.Linear" (moe/config.py): kaiming_uniform_(a=sqrt(5)) reduces to
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = hidden_size.
// mergekit's is_bad_config exempts only `random` from the prompt checks; moeforge
// exempts this mode too, since it reads no prompt.
import type { GateContext, GateStrategy } from '../../core/plugins.js';

export const uniformRandomGate: GateStrategy = {
  name: 'uniform_random',
  needsPrompts: false,
  needsForward: false,
  async computeGates(ctx: GateContext): Promise<Float32Array[]> {
    const d = ctx.config.hiddenSize;
    const bound = Math.sqrt(1 / d);
    return ctx.layers.map((layer) => {
      const rng = ctx.rng.derive(`gate.uniform_random.layer.${layer}`);
      const out = new Float32Array(ctx.experts.length * d);
      for (let i = 0; i < out.length; i++) out[i] = (rng.next() * 2 - 1) * bound;
      return out;
    });
  },
};
