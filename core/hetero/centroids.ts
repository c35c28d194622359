// Prompt centroids for centroid routing (router.ts): for each expert, the mean over its
// positive prompts of the mean final hidden state (after the last RMSNorm, the last
// `hiddenStates` entry) of the prompt, computed by the expert itself. mergekit's
// `hidden` gate averages hidden states of the prompts in the shared base model; with
// experts of different widths there is no shared space, so each expert keeps its own
// centroid and the router compares cosines (scalars) across experts.
import { MoeforgeError } from '../errors.js';
import type { CausalLM } from '../model/causal-lm.js';
import { meanFinalHidden } from './model.js';

export async function fitCentroids(experts: CausalLM[], promptIds: number[][][], names: string[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [e, m] of experts.entries()) {
    const prompts = promptIds[e] ?? [];
    if (prompts.length === 0) {
      throw new MoeforgeError('invalid_recipe', 'centroid routing needs at least one positive prompt for this expert', { path: names[e] });
    }
    const acc = new Float64Array(m.config.hiddenSize);
    for (const ids of prompts) {
      const mean = await meanFinalHidden(m, ids);
      for (let i = 0; i < acc.length; i++) acc[i]! += mean[i]!;
    }
    out.push(Float32Array.from(acc, (s) => s / prompts.length));
  }
  return out;
}
