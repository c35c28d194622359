// Fitting the sequence router of a heterogeneous build (export/formats/hetero/build.ts):
//   centroid   each expert's mean final hidden state on its positive prompts;
//   learned    a router on the experts' mean final hidden states (concatenated), trained
//              on the experts' data (positive_prompts + train_data) by the HeteroTrainer;
//   embedding  MergeME's trained form: the HeteroTrainer initialises and trains the shared
//              embedding/head, the projections and the router (core/hetero/projected.ts);
//   perplexity nothing to fit.
// Experts are loaded one at a time for centroid and learned (peak memory: the largest).
import type { DependencyContainer } from 'tsyringe';
import type { HeteroBuildPlan } from '../../../core/build/hetero.js';
import { readTextSamples } from '../../../core/data/text-samples.js';
import { MoeforgeError } from '../../../core/errors.js';
import { fitCentroids } from '../../../core/hetero/centroids.js';
import { meanFinalHidden } from '../../../core/hetero/model.js';
import type { SequenceRouterSpec } from '../../../core/hetero/router.js';
import { CausalLM, type LoadOptions } from '../../../core/model/causal-lm.js';
import { TOKENS, type HeteroTrainer, type ProjectedWeights } from '../../../core/plugins.js';
import { Rng } from '../../../core/rng.js';
import type { Tokenizer } from '../../../core/tokenizer/tokenizer.js';

export interface FittedRouter {
  router: SequenceRouterSpec;
  projected?: ProjectedWeights;
  report: string[];
}

/** Each expert's training sequences for gate_mode learned: positive_prompts, then its train_data file, tokenized with BOS. */
async function trainingSequences(plan: HeteroBuildPlan, tokenizer: Tokenizer, minTokens: number): Promise<number[][][]> {
  const out: number[][][] = [];
  for (const [i, e] of plan.recipe.experts.entries()) {
    const texts = [...(e.positivePrompts ?? []), ...(e.trainData ? await readTextSamples(e.trainData, 'the training data file') : [])];
    const seqs = texts.map((t) => tokenizer.encode(t, { addSpecialTokens: true })).filter((ids) => ids.length >= minTokens);
    if (seqs.length === 0) {
      throw new MoeforgeError('invalid_recipe', `gate_mode learned needs training samples of at least ${minTokens} tokens for this expert`, { path: `experts[${i}]` });
    }
    out.push(seqs);
  }
  return out;
}

function trainer(container: DependencyContainer): HeteroTrainer {
  if (!container.isRegistered(TOKENS.HeteroTrainer, true)) {
    throw new MoeforgeError('invalid_recipe', 'gate_mode learned with heterogeneous experts needs the router trainer plugin (registered by createContainer())', { path: 'gate_mode' });
  }
  return container.resolve<HeteroTrainer>(TOKENS.HeteroTrainer);
}

export async function fitRouter(
  container: DependencyContainer,
  plan: HeteroBuildPlan,
  expertFolders: string[],
  names: string[],
  tokenizer: Tokenizer,
  o: { load?: LoadOptions; seed: number },
): Promise<FittedRouter> {
  const router: SequenceRouterSpec = { ...plan.router };
  const load = o.load ?? {};
  const rng = new Rng(o.seed).derive('hetero-router');
  const options = plan.recipe.gateOptions ?? {};
  switch (router.kind) {
    case 'centroid': {
      const prompts = plan.recipe.experts.map((e) => (e.positivePrompts ?? []).map((p) => tokenizer.encode(p, { addSpecialTokens: true })));
      router.centroids = [];
      for (const [e, f] of expertFolders.entries()) {
        const model = await CausalLM.load(f, load);
        try {
          router.centroids.push(...(await fitCentroids([model], [prompts[e]!], [names[e]!])));
        } finally {
          model.dispose();
        }
      }
      return { router, report: [] };
    }
    case 'learned': {
      const seqs = await trainingSequences(plan, tokenizer, 1);
      const all = seqs.flat();
      const labels = Int32Array.from(seqs.flatMap((s, e) => s.map(() => e)));
      // Feature row n = [mean hidden of expert 0 on sequence n, expert 1's, …]: one expert loaded at a time.
      const widths = plan.experts.map((m) => m.config.hiddenSize);
      const dim = widths.reduce((a, b) => a + b, 0);
      const features = new Float32Array(all.length * dim);
      let offset = 0;
      for (const [e, f] of expertFolders.entries()) {
        const model = await CausalLM.load(f, load);
        try {
          for (const [n, ids] of all.entries()) features.set(await meanFinalHidden(model, ids), n * dim + offset);
        } finally {
          model.dispose();
        }
        offset += widths[e]!;
      }
      const r = await trainer(container).trainSequenceRouter({ features, dim, labels, numExperts: names.length, topK: router.topK }, options, rng);
      router.weight = r.weight;
      return { router, report: r.report };
    }
    case 'embedding': {
      const seqs = await trainingSequences(plan, tokenizer, 2);
      const p = await trainer(container).trainProjected(
        expertFolders.map((folder, e) => ({ name: names[e]!, folder, sequences: seqs[e]! })),
        router.topK,
        options,
        rng,
      );
      router.weight = p.router;
      return { router, projected: p, report: p.report };
    }
    default:
      return { router, report: [] };
  }
}
