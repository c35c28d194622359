// A full batch of token sequences for next-token training through a frozen decoder
// stack (objective lm, and the heterogeneous projected form in hetero/): ids padded
// with 0, one-hot next-token targets, a weight of 1 where a next token exists, the
// causal + padding mask and the rope tables of one model's config.
import { tf } from '../../core/backend.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import type { AttentionShape } from '../../core/model/attention.js';
import { ropeTables } from '../../core/model/rope.js';

export interface Batch {
  ids: tf.Tensor1D; // [B*T] int32, padded with 0
  targets: tf.Tensor2D; // [B*T, V] one-hot of the next token
  weights: tf.Tensor1D; // [B*T] 1 where a next token exists
  count: number;
  shape: AttentionShape;
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  mask: tf.Tensor4D;
}

export function makeBatch(seqs: number[][], c: NormalizedConfig, invFreq: Float32Array): Batch {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const flat: number[] = [];
  const next: number[] = [];
  const w: number[] = [];
  const m = new Float32Array(B * T * T);
  seqs.forEach((s, b) => {
    for (let t = 0; t < T; t++) {
      flat.push(t < s.length ? s[t]! : 0);
      const has = t + 1 < s.length;
      next.push(has ? s[t + 1]! : 0);
      w.push(has ? 1 : 0);
      for (let k = 0; k < T; k++) if (k > t || k >= s.length) m[(b * T + t) * T + k] = -1e30;
    }
  });
  const { cos, sin } = ropeTables(invFreq, seqs.map(() => Array.from({ length: T }, (_, t) => t)));
  return {
    ids: tf.tensor1d(flat, 'int32'),
    targets: tf.tidy(() => tf.oneHot(tf.tensor1d(next, 'int32'), c.vocabSize).toFloat()) as tf.Tensor2D,
    weights: tf.tensor1d(w),
    count: w.reduce((a, b) => a + b, 0),
    shape: { batch: B, seqLen: T, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, rmsNormEps: c.rmsNormEps },
    cos,
    sin,
    mask: tf.tensor4d(m, [B, 1, T, T]),
  };
}

export function disposeBatch(b: Batch): void {
  for (const t of [b.ids, b.targets, b.weights, b.cos, b.sin, b.mask]) t.dispose();
}

/** Mean next-token NLL (nats per predicted token) of logits [B*T, V] on the batch: a scalar, differentiable. */
export function batchNll(logits: tf.Tensor2D, b: Batch): tf.Scalar {
  const nll = tf.neg(tf.sum(tf.mul(b.targets, tf.logSoftmax(logits)), -1)); // [N]
  return tf.div(tf.sum(tf.mul(nll, b.weights)), b.count) as tf.Scalar;
}
