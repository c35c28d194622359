// Training MergeME's projected form (arXiv 2502.00997 §3.2) for models that fit in
// memory: every expert resident as float32, frozen; trained are the projections
// proj_in_e / proj_out_e of every expert (and the shared embedding and LM head with
// `train_shared`), by full-batch Adam on the mean over experts of a per-expert loss on
// its own data through its projected path: `proj_objective: distill` (default) the KL
// divergence from the expert's own next-token distributions (the expert is its own
// teacher, so what it does on the answers, not only the text's likelihood, is kept),
// `lm` MergeME's next-token NLL of the data. Projections start from least squares fits
// to each expert's own embedding and head (`proj_init`). A held-out split per
// expert (holdoutSequences, seeded) drives early stopping; the best weights are kept.
// Then the router [E, D] is fitted on each sequence's mean shared embedding.
import { initBackend, tf } from '../../../core/backend.js';
import { MoeforgeError } from '../../../core/errors.js';
import type { ProjectedExpertInput, ProjectedWeights } from '../../../core/plugins.js';
import type { Rng } from '../../../core/rng.js';
import { adamWithEarlyStopping } from '../early-stopping.js';
import { holdoutSequences } from '../label-trainer.js';
import { batchNll, disposeBatch, type Batch } from '../lm-batch.js';
import { parseHeteroGateOptions } from './options.js';
import { disposeFrozenExpert, expertBatch, loadFrozenExpert, ownLogits, type FrozenExpert } from './frozen-expert.js';
import { projectedLogits, type ProjTensors, type SharedTensors } from './projected-forward.js';
import { initProjected, leastSquaresProjections, transpose } from './projected-init.js';
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

/** −Σ_v p_v log q_v averaged over the batch's predicted positions (b.weights), as batchNll averages. */
function softCrossEntropy(logq: tf.Tensor2D, p: tf.Tensor2D, b: Batch): tf.Scalar {
  const ce = tf.neg(tf.sum(tf.mul(p, logq), -1)); // [N]
  return tf.div(tf.sum(tf.mul(ce, b.weights)), b.count) as tf.Scalar;
}

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
  const teacher = new Map<Batch, { probs: tf.Tensor2D; entropy: number }>();
  try {
    for (const x of experts) frozen.push(await loadFrozenExpert(x.folder, x.name));
    const V = frozen[0]!.config.vocabSize;
    for (const x of frozen) {
      if (x.config.vocabSize !== V) throw new MoeforgeError('incompatible_models', `vocab_size ${x.config.vocabSize} differs from the first expert's ${V}: the experts must share a tokenizer`, { path: x.name });
    }
    for (const [e, x] of experts.entries()) {
      if (x.sequences.some((s) => s.some((id) => !(Number.isInteger(id) && id >= 0 && id < V)))) throw new MoeforgeError('invalid_data', `a token id is outside the vocabulary (vocab_size ${V})`, { path: experts[e]!.name });
    }
    const padded = initProjected(frozen);
    const init = o.proj_init === 'least_squares' ? { ...padded, ...leastSquaresProjections(frozen, padded) } : padded;
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

    // The experts' own next-token distributions on every batch (the distillation targets) and their entropy.
    for (const [e, b] of [...trainB.entries(), ...evalB.entries()]) {
      if (teacher.has(b)) continue;
      const probs = tf.tidy(() => tf.softmax(ownLogits(frozen[e]!, b)) as tf.Tensor2D);
      teacher.set(b, { probs, entropy: scalar(() => softCrossEntropy(tf.log(tf.maximum(probs, 1e-30)) as tf.Tensor2D, probs, b)) });
    }
    const logits = (e: number, b: Batch) => projectedLogits(frozen[e]!, shared, proj[e]!, b, o.train_shared);
    const nll = (e: number, b: Batch) => batchNll(logits(e, b), b);
    /** KL(own ‖ projected) per predicted position; the teacher's entropy is a constant, so the gradient is the soft cross-entropy's. */
    const kl = (e: number, b: Batch) => tf.sub(softCrossEntropy(tf.logSoftmax(logits(e, b)) as tf.Tensor2D, teacher.get(b)!.probs, b), teacher.get(b)!.entropy) as tf.Scalar;
    const objective = o.proj_objective === 'distill' ? kl : nll;
    const meanLoss = (bs: Batch[]) => tf.div(tf.addN(bs.map((b, e) => objective(e, b))), bs.length) as tf.Scalar;
    const perExpert = () => evalB.map((b, e) => scalar(() => nll(e, b)));
    const perExpertKl = () => evalB.map((b, e) => scalar(() => kl(e, b)));
    const snapshot = () => vars.map((v) => (v.dataSync() as Float32Array).slice());

    const own = evalB.map((b, e) => scalar(() => batchNll(ownLogits(frozen[e]!, b), b)));
    const initial = perExpert();
    const initialKl = perExpertKl();
    let run = { best: snapshot(), steps: 0, bestStep: 0 };
    if (o.proj_epochs > 0) {
      run = adamWithEarlyStopping({
        steps: o.proj_epochs,
        lr: o.proj_lr,
        patience: o.patience,
        loss: () => meanLoss(trainB),
        vars: trainable,
        heldOutLoss: () => scalar(() => meanLoss(evalB)),
        snapshot,
      });
      run.best.forEach((w, i) => tf.tidy(() => vars[i]!.assign(tf.tensor(w, vars[i]!.shape))));
    }
    const { best, steps: step, bestStep } = run;
    const trained = perExpert();
    const trainedKl = perExpertKl();
    for (const t of teacher.values()) t.probs.dispose();
    teacher.clear();

    const [embedW, lmHeadTW, ...projW] = best as [Float32Array, Float32Array, ...Float32Array[]];
    const all = experts.flatMap((x) => x.sequences);
    const router = await trainSequenceRouter(
      { features: meanEmbeddings(embedW, D, all), dim: D, labels: Int32Array.from(experts.flatMap((x, e) => x.sequences.map(() => e))), numExperts: experts.length, topK },
      options,
      rng,
    );
    const fmt = (v: number) => v.toFixed(3);
    const report = [
      `projected form: shared width ${D}, ${o.proj_init === 'least_squares' ? 'least-squares' : 'identity'} projections, objective ${o.proj_objective}, ${Math.min(step, o.proj_epochs)} steps (best at ${bestStep})${o.train_shared ? ', shared embedding and head trained' : ''}`,
      ...experts.map(
        (x, e) =>
          `${x.name}: NLL own model ${fmt(own[e]!)}, projected init ${fmt(initial[e]!)}, trained ${fmt(trained[e]!)}; KL to own model: init ${fmt(Math.max(0, initialKl[e]!))}, trained ${fmt(Math.max(0, trainedKl[e]!))} (${held[e]!.length ? 'held-out' : 'training'}, nats/token)`,
      ),
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
    for (const t of teacher.values()) t.probs.dispose();
    for (const v of vars) v.dispose();
    for (const b of batches) disposeBatch(b);
    for (const x of frozen) await disposeFrozenExpert(x);
  }
}
