// gate_mode: cheap_embed — mergekit's `get_cheap_embedding`: the token embeddings of
// all of an expert's prompts summed (over tokens and prompts) and unit-normalised;
// negatives likewise, subtracted, and the difference normalised again
// (router.py normalises inside get_cheap_embedding and once more in get_gate_params).
// The same vector serves every layer.
import type { GateContext, GateStrategy } from '../../core/plugins.js';
import { stackRows, sumRows, unitNormalize } from './prompt-vectors.js';

export const cheapEmbedGate: GateStrategy = {
  name: 'cheap_embed',
  needsPrompts: true,
  needsForward: false,
  async computeGates(ctx: GateContext): Promise<Float32Array[]> {
    const d = ctx.config.hiddenSize;
    const rows: Float64Array[] = [];
    for (const expert of ctx.experts) {
      const v = unitNormalize(sumRows(await ctx.states.embeddingSums(expert.positivePrompts), d));
      if (expert.negativePrompts.length > 0) {
        const n = unitNormalize(sumRows(await ctx.states.embeddingSums(expert.negativePrompts), d));
        for (let i = 0; i < d; i++) v[i]! -= n[i]!;
      }
      rows.push(unitNormalize(v));
    }
    const gate = stackRows(rows, d);
    return ctx.layers.map(() => gate.slice());
  },
};
