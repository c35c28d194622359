// Training one layer's router by classification (moeforge's `objective: label`): each
// token of an expert's data is labelled with that expert, and the router weight
// G [E, d] is fitted by softmax cross-entropy on the logits x Gᵀ, with an optional
// load-balancing term (the Switch Transformer / Mixtral auxiliary loss, transformers'
// `load_balancing_loss_func`: E · Σ_e f_e · P_e, f_e the fraction of tokens with e in
// their top-k, P_e the mean router probability of e). Full-batch Adam from a given
// initialisation (the router_input vectors), a held-out split by sequence (stratified
// per expert, seeded), early stopping on the held-out loss, best weights kept.
import { tf } from '../../core/backend.js';
import type { Rng } from '../../core/rng.js';

export interface LabelData {
  /** Router inputs [N, d], row-major. */
  x: Float32Array;
  /** Expert index of each token [N]. */
  labels: Int32Array;
  /** Sequence index of each token [N] (the held-out split keeps sequences whole). */
  sequences: Int32Array;
}

export interface LabelTrainOptions {
  /** Most full-batch Adam steps. */
  epochs: number;
  lr: number;
  /** Weight of the load-balancing term (0 = none). */
  balance: number;
  /** Fraction of each expert's sequences held out. */
  holdout: number;
  /** Steps without a better held-out loss before stopping. */
  patience: number;
  expertsPerToken: number;
}

export interface LabelTrainResult {
  /** Router weight [E, d], row-major. */
  weights: Float32Array;
  trainAccuracy: number;
  /** Top-1 accuracy on the held-out tokens; null when nothing could be held out. */
  heldOutAccuracy: number | null;
  /** Accuracy of the initial weights on the same held-out tokens. */
  initialHeldOutAccuracy: number | null;
  steps: number;
  bestStep: number;
}

/** Held-out sequence ids: per expert, round(holdout × its sequences) of them (≥ 1 when it has ≥ 2). */
export function holdoutSequences(labels: Int32Array, sequences: Int32Array, fraction: number, rng: Rng): Set<number> {
  const byExpert = new Map<number, number[]>();
  const seen = new Set<number>();
  for (let i = 0; i < labels.length; i++) {
    const s = sequences[i]!;
    if (seen.has(s)) continue;
    seen.add(s);
    const list = byExpert.get(labels[i]!) ?? [];
    list.push(s);
    byExpert.set(labels[i]!, list);
  }
  const out = new Set<number>();
  for (const e of [...byExpert.keys()].sort((a, b) => a - b)) {
    const list = rng.derive(`holdout.${e}`).shuffle([...byExpert.get(e)!]);
    const n = fraction <= 0 || list.length < 2 ? 0 : Math.min(list.length - 1, Math.max(1, Math.round(fraction * list.length)));
    for (const s of list.slice(0, n)) out.add(s);
  }
  return out;
}

/** Top-1 accuracy of weights w [E, d] on rows `idx` of the data. */
export function routingAccuracy(w: Float32Array, numExperts: number, d: number, data: LabelData, idx: number[]): number {
  if (idx.length === 0) return NaN;
  let right = 0;
  for (const i of idx) {
    let best = 0;
    let bestV = -Infinity;
    for (let e = 0; e < numExperts; e++) {
      let v = 0;
      for (let k = 0; k < d; k++) v += data.x[i * d + k]! * w[e * d + k]!;
      if (v > bestV) [best, bestV] = [e, v];
    }
    if (best === data.labels[i]) right++;
  }
  return right / idx.length;
}

function gatherRows(x: Float32Array, d: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * d);
  idx.forEach((r, i) => out.set(x.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

/** [E, d] ↔ [d, E]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/** Fraction of rows with each expert among their top-k logits (lower index first on ties), summed over the k slots. */
function topkFractions(logits: Float32Array, n: number, E: number, k: number): Float32Array {
  const f = new Float32Array(E);
  const order = Array.from({ length: E }, (_, i) => i);
  for (let t = 0; t < n; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    order.sort((a, b) => row[b]! - row[a]! || a - b);
    for (let j = 0; j < k; j++) f[order[j]!]! += 1 / n;
  }
  return f;
}

/**
 * The `router_input` initialisation on the training tokens: per expert, the mean of its
 * tokens' router inputs divided by its L2 norm (mergekit's gate formula, over all tokens).
 */
export function meanVectorInit(data: LabelData, numExperts: number, d: number, rows: number[]): Float32Array {
  const w = new Float64Array(numExperts * d);
  for (const i of rows) {
    const e = data.labels[i]!;
    for (let k = 0; k < d; k++) w[e * d + k]! += data.x[i * d + k]!;
  }
  const out = new Float32Array(numExperts * d);
  for (let e = 0; e < numExperts; e++) {
    let n = 0;
    for (let k = 0; k < d; k++) n += w[e * d + k]! ** 2;
    n = Math.max(Math.sqrt(n), 1e-8);
    for (let k = 0; k < d; k++) out[e * d + k] = w[e * d + k]! / n;
  }
  return out;
}

/** Trains one router; `init` defaults to meanVectorInit over the training split. */
export function trainLabelGate(data: LabelData, numExperts: number, d: number, init: Float32Array | undefined, o: LabelTrainOptions, rng: Rng): LabelTrainResult {
  const E = numExperts;
  const held = holdoutSequences(data.labels, data.sequences, o.holdout, rng);
  const trainIdx: number[] = [];
  const heldIdx: number[] = [];
  for (let i = 0; i < data.labels.length; i++) (held.has(data.sequences[i]!) ? heldIdx : trainIdx).push(i);
  init ??= meanVectorInit(data, E, d, trainIdx);
  const k = Math.min(o.expertsPerToken, E);

  const xTrain = tf.tensor2d(gatherRows(data.x, d, trainIdx), [trainIdx.length, d]);
  // tidy: the int ids, the int one-hot and the variable's initial value are intermediates.
  const oneHot = (idx: number[]) => tf.tidy(() => tf.oneHot(tf.tensor1d(idx.map((i) => data.labels[i]!), 'int32'), E).toFloat() as tf.Tensor2D); // [N, E]
  const yTrain = oneHot(trainIdx);
  const xHeld = heldIdx.length ? tf.tensor2d(gatherRows(data.x, d, heldIdx), [heldIdx.length, d]) : undefined;
  const yHeld = heldIdx.length ? oneHot(heldIdx) : undefined;
  const wT = tf.tidy(() => tf.variable(tf.tensor2d(transpose(init, E, d), [d, E]))); // Gᵀ [d, E]
  const optimizer = tf.train.adam(o.lr);
  const ce = (x: tf.Tensor2D, y: tf.Tensor2D) => tf.losses.softmaxCrossEntropy(y, tf.matMul(x, wT)) as tf.Scalar;

  let best: Float32Array = init.slice();
  let bestLoss = Infinity;
  let bestStep = 0;
  let step = 0;
  try {
    for (step = 1; step <= o.epochs; step++) {
      // f_e has no gradient (top-k is a selection): computed from the current weights, held constant.
      let f: tf.Tensor1D | undefined;
      if (o.balance > 0) {
        const logits = tf.tidy(() => tf.matMul(xTrain, wT));
        f = tf.tensor1d(topkFractions(logits.dataSync() as Float32Array, trainIdx.length, E, k));
        logits.dispose();
      }
      optimizer.minimize(() =>
        tf.tidy(() => {
          const loss = ce(xTrain, yTrain);
          if (!f) return loss;
          const p = tf.mean(tf.softmax(tf.matMul(xTrain, wT)), 0); // P_e [E]
          return tf.add(loss, tf.mul(o.balance * E, tf.sum(tf.mul(f, p)))) as tf.Scalar;
        }),
      );
      f?.dispose();
      // Early stopping on the held-out cross-entropy (the training loss when nothing is held out).
      const lossT = tf.tidy(() => (xHeld && yHeld ? ce(xHeld, yHeld) : ce(xTrain, yTrain)));
      const loss = lossT.dataSync()[0]!;
      lossT.dispose();
      if (loss < bestLoss - 1e-6) {
        bestLoss = loss;
        bestStep = step;
        best = transpose(wT.dataSync() as Float32Array, d, E);
      } else if (step - bestStep >= o.patience) {
        break;
      }
    }
  } finally {
    for (const t of [xTrain, yTrain, xHeld, yHeld, wT]) t?.dispose();
    optimizer.dispose();
  }
  return {
    weights: best,
    trainAccuracy: routingAccuracy(best, E, d, data, trainIdx),
    heldOutAccuracy: heldIdx.length ? routingAccuracy(best, E, d, data, heldIdx) : null,
    initialHeldOutAccuracy: heldIdx.length ? routingAccuracy(init, E, d, data, heldIdx) : null,
    steps: Math.min(step, o.epochs),
    bestStep,
  };
}
