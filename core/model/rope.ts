// Rotary position embeddings, as transformers' modeling_rope_utils.py computes the
// inverse frequencies and the llama/mistral/qwen modeling files apply them: the
// rotate-half (non-interleaved, GPT-NeoX) convention, dimension i paired with
// i + headDim/2, cos/sin tables in float32.
import { tf } from '../backend.js';
import type { RopeConfig } from '../config/types.js';

const f32 = Math.fround;

/** `1 / base ** (arange(0, dim, 2) / dim)` in float32, as `_compute_default_rope_parameters`. */
function defaultInvFreq(base: number, headDim: number): Float32Array {
  const inv = new Float32Array(headDim / 2);
  for (let i = 0; i < inv.length; i++) inv[i] = f32(1 / f32(f32(base) ** f32((2 * i) / headDim)));
  return inv;
}

/**
 * Inverse frequencies for one forward call. `seqLen` (max position + 1) only
 * matters for `dynamic` NTK scaling, which recomputes the base once the sequence
 * is longer than the original context (`_compute_dynamic_ntk_parameters`).
 */
export function ropeInvFreq(rope: RopeConfig, headDim: number, seqLen: number, maxPositionEmbeddings: number): Float32Array {
  const factor = rope.factor ?? 1;
  switch (rope.type) {
    case 'default':
      return defaultInvFreq(rope.theta, headDim);
    case 'linear': {
      // `_compute_linear_scaling_rope_parameters`: inv_freq / factor (= positions / factor).
      const inv = defaultInvFreq(rope.theta, headDim);
      for (let i = 0; i < inv.length; i++) inv[i] = f32(inv[i]! / factor);
      return inv;
    }
    case 'dynamic': {
      const original = rope.originalMaxPositionEmbeddings ?? maxPositionEmbeddings;
      if (seqLen <= original) return defaultInvFreq(rope.theta, headDim);
      const base = rope.theta * ((factor * seqLen) / original - (factor - 1)) ** (headDim / (headDim - 2));
      return defaultInvFreq(base, headDim);
    }
    case 'llama3': {
      // `_compute_llama3_parameters`: long wavelengths divided by factor, short kept,
      // a smooth interpolation between the two thresholds.
      const inv = defaultInvFreq(rope.theta, headDim);
      const low = rope.lowFreqFactor ?? 1;
      const high = rope.highFreqFactor ?? 4;
      const original = rope.originalMaxPositionEmbeddings ?? 8192;
      const lowWavelen = original / low;
      const highWavelen = original / high;
      for (let i = 0; i < inv.length; i++) {
        const f = inv[i]!;
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) continue;
        if (wavelen > lowWavelen) {
          inv[i] = f32(f / factor);
          continue;
        }
        const s = (original / wavelen - low) / (high - low);
        inv[i] = f32((1 - s) * (f / factor) + s * f);
      }
      return inv;
    }
  }
}

/**
 * cos/sin tables for the given positions: [B, 1, T, hD] each, the halves
 * repeated (`emb = cat(freqs, freqs)`), angles and cos/sin in float32.
 */
export function ropeTables(invFreq: Float32Array, positions: number[][]): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const batch = positions.length;
  const seqLen = positions[0]?.length ?? 0;
  const half = invFreq.length;
  const headDim = 2 * half;
  const cos = new Float32Array(batch * seqLen * headDim);
  const sin = new Float32Array(batch * seqLen * headDim);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen; t++) {
      const p = positions[b]![t]!;
      const o = (b * seqLen + t) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = f32(p * invFreq[i]!);
        const c = f32(Math.cos(angle));
        const s = f32(Math.sin(angle));
        cos[o + i] = c;
        cos[o + half + i] = c;
        sin[o + i] = s;
        sin[o + half + i] = s;
      }
    }
  }
  return {
    cos: tf.tensor4d(cos, [batch, 1, seqLen, headDim]),
    sin: tf.tensor4d(sin, [batch, 1, seqLen, headDim]),
  };
}

/** `x * cos + rotate_half(x) * sin` with `rotate_half(x) = cat(-x2, x1)`; x: [B, nH, T, hD]. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const half = x.shape[3] / 2;
    const [x1, x2] = tf.split(x, [half, half], 3); // [B, nH, T, hD/2] each
    const rotated = tf.concat([tf.neg(x2), x1], 3); // [B, nH, T, hD]
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}
