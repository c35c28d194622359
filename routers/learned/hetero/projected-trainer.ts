// Training MergeME's projected form (arXiv 2502.00997 §3.2) for models that fit in
// memory: every expert resident as float32, frozen; trained are the projections
// proj_in_e / proj_out_e of every expert (and the shared embedding and LM head with
// `train_shared`), by full-batch Adam on the mean over experts of each expert's mean
// next-token NLL through its projected path on its own data. A held-out split per
// expert (holdoutSequences, seeded) drives early stopping; the best weights are kept.
// Then the router [E, D] is fitted on each sequence's mean shared embedding.
import { initBackend, tf } from '../../../core/backend.js';
import { MoeforgeError } from '../../../core/errors.js';
import type { ProjectedExpertInput, ProjectedWeights } from '../../../core/plugins.js';
import type { Rng } from '../../../core/rng.js';
import { holdoutSequences } from '../label-trainer.js';
import { batchNll, disposeBatch, type Batch } from '../lm-batch.js';
import { parseHeteroGateOptions } from './options.js';
import { disposeFrozenExpert, expertBatch, loadFrozenExpert, ownLogits, type FrozenExpert } from './frozen-expert.js';
import { projectedLogits, type ProjTensors, type SharedTensors } from './projected-forward.js';
import { initProjected, transpose } from './projected-init.js';
import { trainSequenceRouter } from './sequence-router.js';

function checkInputs(experts: ProjectedExpertInput[], topK: number): void {
  if (experts.length === 0) throw new MoeforgeError('invalid_recipe', 'the projected form needs at least one expert', { path: 'experts' });
  if (!Number.isInteger(topK) || topK < 1 || topK > experts.length) {
    throw new MoeforgeError('invalid_recipe', `experts_per_token ${topK} must be between 1 and the ${experts.length} experts`, { path: 'experts_per_token' });
  }
  for (const x of experts) {
    if (x.sequences.length === 0) throw new MoeforgeError('invalid_data', 'the projected form needs training sequences for every expert; this one has none', { path: x.name });
    if (x.sequences.some((s) => s.length < 2)) throw new MoeforgeError('invalid_data', 'a training sequence has fewer than 2 tokens (nothing to predict)', { path: x.name });
  }
}

/** Per-expert split of its sequences, the same split the router's trainer draws from `rng`. */
function split(experts: ProjectedExpertInput[], holdout: number, rng: Rng): { train: number[][][]; held: number[][][] } {
  const labels = Int32Array.from(experts.flatMap((x, e) => x.sequences.map(() => e)));
  const held = holdoutSequences(labels, Int32Array.from(labels, (_, i) => i), holdout, rng);
  const out = { train: [] as number[][][], held: [] as number[][][] };
  let i = 0;
  for (const x of experts) {
    out.train.push([]);
    out.held.push([]);
    for (const s of x.sequences) (held.has(i++) ? out.held : out.train).at(-1)!.push(s);
  }
  return out;
}

/** Mean of each sequence's rows of the shared embedding [V, D], [N, D] (the router's input). */
function meanEmbeddings(embed: Float32Array, D: number, seqs: number[][]): Float32Array {
  const out = new Float32Array(seqs.length * D);
  seqs.forEach((s, n) => {
    const acc = new Float64Array(D);
    for (const id of s) for (let k = 0; k < D; k++) acc[k]! += embed[id * D + k]!;
    for (let k = 0; k < D; k++) out[n * D + k] = acc[k]! / s.length;
  });
  return out;
}

/** A variable holding `values` ([rows, cols]); the tensor it is made from is freed (tf.variable keeps its own reference). */
const variable = (values: Float32Array, shape: [number, number], trainable = true): tf.Variable<tf.Rank.R2> =>
  tf.tidy(() => tf.variable(tf.tensor2d(values, shape), trainable));

const scalar = (f: () => tf.Scalar): number => {
  const t = tf.tidy(f);
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

export async function trainProjected(experts: ProjectedExpertInput[], topK: number, options: Record<string, unknown>, rng: Rng): Promise<ProjectedWeights> {
  const o = parseHeteroGateOptions(options);
  checkInputs(experts, topK);
  await initBackend();
  const frozen: FrozenExpert[] = [];
  const batches: Batch[] = [];
  const vars: tf.Variable[] = [];
  try {
    for (const x of experts) frozen.push(await loadFrozenExpert(x.folder, x.name));
    const V = frozen[0]!.config.vocabSize;
    for (const x of frozen) {
      if (x.config.vocabSize !== V) throw new MoeforgeError('incompatible_models', `vocab_size ${x.config.vocabSize} differs from the first expert's ${V}: the experts must share a tokenizer`, { path: x.name });
    }
    for (const [e, x] of experts.entries()) {
      if (x.sequences.some((s) => s.some((id) => !(Number.isInteger(id) && id >= 0 && id < V)))) throw new MoeforgeError('invalid_data', `a token id is outside the vocabulary (vocab_size ${V})`, { path: experts[e]!.name });
    }
    const init = initProjected(frozen);
    const D = init.sharedHiddenSize;

    const { train, held } = split(experts, o.holdout, rng);
    const trainB = frozen.map((x, e) => expertBatch(x, train[e]!));
    batches.push(...trainB);
    // An expert with nothing held out (too few sequences) is measured on its training data.
    const evalB = frozen.map((x, e) => (held[e]!.length ? expertBatch(x, held[e]!) : trainB[e]!));
    batches.push(...evalB.filter((b, e) => b !== trainB[e]));

    const embed = variable(init.embed, [V, D], o.train_shared); // [V, D]
    const lmHeadT = variable(transpose(init.lmHead, V, D), [D, V], o.train_shared); // [D, V]
    vars.push(embed, lmHeadT);
    const shared: SharedTensors = { embed, lmHeadT };
    const proj: ProjTensors[] = frozen.map((x, e) => {
      const d = x.config.hiddenSize;
      const p = {
        projInT: variable(transpose(init.projIn[e]!, d, D), [D, d]), // [D, d_e]
        projOutT: variable(transpose(init.projOut[e]!, D, d), [d, D]), // [d_e, D]
      };
      vars.push(p.projInT, p.projOutT);
      return p;
    });
    const trainable = o.train_shared ? vars : vars.slice(2);

    const nll = (e: number, b: Batch) => batchNll(projectedLogits(frozen[e]!, shared, proj[e]!, b, o.train_shared), b);
    const meanLoss = (bs: Batch[]) => tf.div(tf.addN(bs.map((b, e) => nll(e, b))), bs.length) as tf.Scalar;
    const perExpert = () => evalB.map((b, e) => scalar(() => nll(e, b)));
    const snapshot = () => vars.map((v) => (v.dataSync() as Float32Array).slice());

    const own = evalB.map((b, e) => scalar(() => batchNll(ownLogits(frozen[e]!, b), b)));
    const initial = perExpert();
    let best = snapshot();
    let bestLoss = initial.reduce((a, b) => a + b, 0) / initial.length;
    let bestStep = 0;
    let step = 0;
    if (o.proj_epochs > 0) {
      const optimizer = tf.train.adam(o.proj_lr);
      try {
        for (step = 1; step <= o.proj_epochs; step++) {
          optimizer.minimize(() => meanLoss(trainB), false, trainable);
          const l = scalar(() => meanLoss(evalB));
          if (l < bestLoss - 1e-6) {
            bestLoss = l;
            bestStep = step;
            best = snapshot();
          } else if (step - bestStep >= o.patience) {
            break;
          }
        }
      } finally {
        optimizer.dispose();
      }
      best.forEach((w, i) => tf.tidy(() => vars[i]!.assign(tf.tensor(w, vars[i]!.shape))));
    }
    const trained = perExpert();

    const [embedW, lmHeadTW, ...projW] = best as [Float32Array, Float32Array, ...Float32Array[]];
    const all = experts.flatMap((x) => x.sequences);
    const router = await trainSequenceRouter(
      { features: meanEmbeddings(embedW, D, all), dim: D, labels: Int32Array.from(experts.flatMap((x, e) => x.sequences.map(() => e))), numExperts: experts.length, topK },
      options,
      rng,
    );
    const fmt = (v: number) => v.toFixed(3);
    const report = [
      `projected form: shared width ${D}, ${Math.min(step, o.proj_epochs)} steps (best at ${bestStep})${o.train_shared ? ', shared embedding and head trained' : ''}`,
      ...experts.map((x, e) => `${x.name}: NLL own model ${fmt(own[e]!)}, projected init ${fmt(initial[e]!)}, trained ${fmt(trained[e]!)} (${held[e]!.length ? 'held-out' : 'training'}, nats/token)`),
      ...router.report,
    ];
    return {
      sharedHiddenSize: D,
      embed: embedW,
      lmHead: transpose(lmHeadTW, D, V),
      projIn: frozen.map((x, e) => transpose(projW[2 * e]!, D, x.config.hiddenSize)),
      projOut: frozen.map((x, e) => transpose(projW[2 * e + 1]!, x.config.hiddenSize, D)),
      router: router.weight,
      report,
    };
  } finally {
    for (const v of vars) v.dispose();
    for (const b of batches) disposeBatch(b);
    for (const x of frozen) await disposeFrozenExpert(x);
  }
}
