// gate_mode: learned — router weights trained with tfjs on data per expert (its
// positive_prompts and/or its `train_data:` file), options from the recipe's `gate:`
// block. objective label (default): layer by layer on the MoE's own router inputs
// (routers/learned/label-objective.ts), the held-out routing accuracy of every layer
// reported; objective lm: the next-token loss of the whole MoE with only the routers
// trainable, from the router_input vectors (routers/learned/lm-objective.ts), the loss
// before and after reported. Reports are printed by the build and written to the card.
import { MoeforgeError } from '../../core/errors.js';
import type { GateContext, GateStrategy } from '../../core/plugins.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { trainLabelObjective } from '../learned/label-objective.js';
import { trainLmObjective } from '../learned/lm-objective.js';
import { parseLearnedGateOptions } from '../learned/options.js';
import { readTrainData } from '../learned/train-data.js';

const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);

export const learnedGate: GateStrategy = {
  name: 'learned',
  // Data is checked by the recipe (positive_prompts or train_data per expert), not the generic prompt rule.
  needsPrompts: false,
  needsForward: false,
  async computeGates(ctx: GateContext): Promise<Float32Array[]> {
    const o = parseLearnedGateOptions(ctx.options);
    const moe = ctx.moe;
    if (!moe || moe.expertFolders.length === 0) throw new Error('gate_mode learned needs the MoE being built (GateContext.moe)');
    if (ctx.experts.length !== moe.expertFolders.length) {
      throw new MoeforgeError('invalid_recipe', 'gate_mode learned does not train a shared expert gate yet; remove the shared experts\' positive_prompts', { path: 'shared_experts' });
    }
    let tok: Tokenizer;
    try {
      tok = await Tokenizer.fromFolder(moe.baseFolder);
    } catch (e) {
      throw new MoeforgeError('missing_file', `gate_mode learned needs the base model's tokenizer (tokenizer.json): ${(e as Error).message}`, { path: moe.baseFolder, cause: e });
    }
    // As mergekit tokenizes prompts: the BOS text, then the sample without special tokens.
    const bos = tok.bosToken ?? '';
    const ids: number[][] = [];
    const experts: number[] = [];
    for (const [e, expert] of ctx.experts.entries()) {
      const samples = [...expert.positivePrompts, ...(expert.trainData ? await readTrainData(expert.trainData) : [])];
      if (samples.length === 0) {
        throw new MoeforgeError('invalid_recipe', 'gate_mode learned needs training data for every expert: give it positive_prompts or a train_data file', { path: expert.name });
      }
      for (const s of samples) {
        const seq = tok.encode(bos + s, { addSpecialTokens: false });
        if (seq.length > 0) {
          ids.push(seq);
          experts.push(e);
        }
      }
    }
    const labelled = { ids, experts, bosTokenId: tok.bosTokenId ?? null };
    if (o.objective === 'lm') {
      const all = Array.from({ length: ctx.config.numLayers }, (_, l) => l);
      if (ctx.layers.join() !== all.join()) {
        throw new MoeforgeError('invalid_recipe', 'objective lm needs a router in every layer (a Mixtral-style output)', { path: 'gate.objective' });
      }
      // Starts from the router_input vectors on the MoE's own inputs, then trains on the LM loss.
      const init = await trainLabelObjective(ctx, labelled, o, true);
      const r = await trainLmObjective(moe.baseFolder, moe.expertFolders, ctx.layers, init.gates, { ids, experts }, { ...o, expertsPerToken: moe.expertsPerToken, normTopkProb: moe.normTopkProb }, ctx.rng.derive('lm'));
      const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
      ctx.report?.push(
        `lm objective: next-token loss on the experts' data ${f(r.initialLoss)} → ${f(r.finalLoss)} nats/token, held-out ${f(r.initialHeldOutLoss)} → ${f(r.finalHeldOutLoss)} (router_input init → trained), best step ${r.bestStep} of ${r.steps}`,
      );
      return r.gates;
    }
    const { gates, layers } = await trainLabelObjective(ctx, labelled, o);
    for (const l of layers) {
      ctx.report?.push(
        `layer ${l.layer}: held-out routing accuracy ${pct(l.heldOutAccuracy)} (router_input init ${pct(l.initialHeldOutAccuracy)}), train ${pct(l.trainAccuracy)}, best step ${l.bestStep} of ${l.steps}`,
      );
    }
    return gates;
  },
};
