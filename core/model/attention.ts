// Causal self-attention as the eager path of LlamaAttention / MistralAttention /
// Qwen2Attention / Qwen3Attention (transformers): projections (q/k/v biases for
// qwen2), qwen3's per-head q/k RMSNorm before RoPE, rotate-half RoPE, grouped-query
// attention (query head h reads KV head floor(h / (nH / nKv)), `repeat_kv`),
// scores scaled by head_dim^-0.5, an additive mask (causal, padding, sliding
// window), softmax in float32, heads concatenated, o_proj.
import { tf } from '../backend.js';
import { disposeLinear, linear, type Linear } from './linear.js';
import { rmsNorm } from './rms-norm.js';
import { applyRope } from './rope.js';
import type { LayerKv } from './kv-cache.js';

export interface AttentionWeights {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  /** qwen3: RMSNorm weights [hD] applied per head to q and k before RoPE. */
  qNorm?: tf.Tensor1D;
  kNorm?: tf.Tensor1D;
}

export interface AttentionShape {
  batch: number;
  seqLen: number; // new tokens in this call (T)
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
}

export interface AttentionInputs {
  cos: tf.Tensor4D; // [B, 1, T, hD]
  sin: tf.Tensor4D; // [B, 1, T, hD]
  /** Additive mask [B, 1, T, S] (0 = attend, -1e30 = masked), S = past + T keys. */
  mask: tf.Tensor4D;
}

/** [B*T, d] → [B, nHeads, T, hD] with an optional per-head norm. */
function projectHeads(
  x: tf.Tensor2D,
  w: Linear,
  heads: number,
  s: AttentionShape,
  norm: tf.Tensor1D | undefined,
): tf.Tensor4D {
  let h = tf.reshape(linear(x, w), [s.batch, s.seqLen, heads, s.headDim]) as tf.Tensor4D; // [B, T, nH, hD]
  if (norm) h = rmsNorm(h, norm, s.rmsNormEps);
  return tf.transpose(h, [0, 2, 1, 3]); // [B, nH, T, hD]
}

/** repeat_kv: [B, nKv, S, hD] → [B, nH, S, hD], each KV head repeated for its group. */
function repeatKv(x: tf.Tensor4D, groups: number): tf.Tensor4D {
  if (groups === 1) return x;
  const [b, nKv, sLen, hD] = x.shape;
  const expanded = tf.tile(tf.reshape(x, [b, nKv, 1, sLen, hD]), [1, 1, groups, 1, 1]); // [B, nKv, g, S, hD]
  return tf.reshape(expanded, [b, nKv * groups, sLen, hD]);
}

/**
 * x: [B*T, d] (the input_layernorm output) → [B*T, d]. With `cache`, this call's
 * keys/values are appended to it (and kept); attention then covers past + new.
 */
export function attention(
  x: tf.Tensor2D,
  w: AttentionWeights,
  s: AttentionShape,
  inputs: AttentionInputs,
  cache?: LayerKv,
): tf.Tensor2D {
  const kv = tf.tidy(() => {
    const k = applyRope(projectHeads(x, w.k, s.numKvHeads, s, w.kNorm), inputs.cos, inputs.sin); // [B, nKv, T, hD]
    const v = projectHeads(x, w.v, s.numKvHeads, s, undefined); // [B, nKv, T, hD]
    return { k, v };
  });
  let keys = kv.k;
  let values = kv.v;
  if (cache) {
    if (cache.k && cache.v) {
      keys = tf.concat([cache.k, kv.k], 2); // [B, nKv, S, hD]
      values = tf.concat([cache.v, kv.v], 2);
      cache.k.dispose();
      cache.v.dispose();
      kv.k.dispose();
      kv.v.dispose();
    }
    cache.k = keys;
    cache.v = values;
  }
  const out = tf.tidy(() => {
    const q = applyRope(projectHeads(x, w.q, s.numHeads, s, w.qNorm), inputs.cos, inputs.sin); // [B, nH, T, hD]
    const groups = s.numHeads / s.numKvHeads;
    const k = repeatKv(keys, groups); // [B, nH, S, hD]
    const v = repeatKv(values, groups); // [B, nH, S, hD]
    // k transposed explicitly: matMul(..., transposeB) is slow on wasm.
    const scores = tf.mul(tf.matMul(q, tf.transpose(k, [0, 1, 3, 2])), s.headDim ** -0.5); // [B, nH, T, S]
    const probs = tf.softmax(tf.add(scores, inputs.mask)); // float32 softmax over keys
    const ctx = tf.matMul(probs, v); // [B, nH, T, hD]
    const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [s.batch * s.seqLen, s.numHeads * s.headDim]); // [B*T, nH*hD]
    return linear(merged as tf.Tensor2D, w.o); // [B*T, d]
  });
  if (!cache) {
    keys.dispose();
    values.dispose();
  }
  return out;
}

/** Multiply-adds per token of the projections (for FLOP accounting). */
export function attentionProjectionMacs(hidden: number, numHeads: number, numKvHeads: number, headDim: number): number {
  return hidden * headDim * (2 * numHeads + 2 * numKvHeads);
}

export function disposeAttention(w: AttentionWeights): void {
  disposeLinear(w.q);
  disposeLinear(w.k);
  disposeLinear(w.v);
  disposeLinear(w.o);
  w.qNorm?.dispose();
  w.kNorm?.dispose();
}
