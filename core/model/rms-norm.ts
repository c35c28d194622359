// RMSNorm as LlamaRMSNorm (modeling_llama.py): statistics in float32,
// `w * (x * rsqrt(mean(x^2) + eps))`, weight applied after normalising, no bias,
// no `1 + w` offset. Normalises over the last axis, so it serves the hidden
// state [N, d] and qwen3's per-head q/k norm [B, T, nH, hD] alike.
import { tf } from '../backend.js';

export function rmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number): T {
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), -1, true); // [..., 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight) as T;
  });
}
