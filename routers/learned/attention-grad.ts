// Attention for training through (objective lm): the same computation as
// core/model/attention.ts (no KV cache), with the KV heads repeated by concatenation
// instead of a rank-5 tile, whose gradient tfjs does not implement
// ("Gradient for tile operation is not implemented for rank-5 tensors").
import { tf } from '../../core/backend.js';
import type { AttentionInputs, AttentionShape, AttentionWeights } from '../../core/model/attention.js';
import { linear, type Linear } from '../../core/model/linear.js';
import { rmsNorm } from '../../core/model/rms-norm.js';
import { applyRope } from '../../core/model/rope.js';

function heads(x: tf.Tensor2D, w: Linear, n: number, s: AttentionShape, norm: tf.Tensor1D | undefined): tf.Tensor4D {
  let h = tf.reshape(linear(x, w), [s.batch, s.seqLen, n, s.headDim]) as tf.Tensor4D; // [B, T, n, hD]
  if (norm) h = rmsNorm(h, norm, s.rmsNormEps);
  return tf.transpose(h, [0, 2, 1, 3]); // [B, n, T, hD]
}

/** repeat_kv: [B, nKv, T, hD] → [B, nH, T, hD], KV head j serving query heads j·g … j·g+g-1. */
function repeatKv(x: tf.Tensor4D, groups: number): tf.Tensor4D {
  if (groups === 1) return x;
  const parts = tf.split(x, x.shape[1], 1); // nKv × [B, 1, T, hD]
  return tf.concat(parts.flatMap((p) => new Array<tf.Tensor4D>(groups).fill(p as tf.Tensor4D)), 1);
}

/** x: [B*T, d] (the input_layernorm output) → [B*T, d]. */
export function attentionForTraining(x: tf.Tensor2D, w: AttentionWeights, s: AttentionShape, inputs: AttentionInputs): tf.Tensor2D {
  const groups = s.numHeads / s.numKvHeads;
  const q = applyRope(heads(x, w.q, s.numHeads, s, w.qNorm), inputs.cos, inputs.sin); // [B, nH, T, hD]
  const k = repeatKv(applyRope(heads(x, w.k, s.numKvHeads, s, w.kNorm), inputs.cos, inputs.sin), groups); // [B, nH, T, hD]
  const v = repeatKv(heads(x, w.v, s.numKvHeads, s, undefined), groups); // [B, nH, T, hD]
  const scores = tf.mul(tf.matMul(q, tf.transpose(k, [0, 1, 3, 2])), s.headDim ** -0.5); // [B, nH, T, T]
  const ctx = tf.matMul(tf.softmax(tf.add(scores, inputs.mask)), v); // [B, nH, T, hD]
  const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [s.batch * s.seqLen, s.numHeads * s.headDim]) as tf.Tensor2D; // [B*T, nH*hD]
  return linear(merged, w.o); // [B*T, d]
}
