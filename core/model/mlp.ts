// The gated SiLU feed-forward block of Llama/Mistral/Qwen (LlamaMLP), also the
// shape of every Mixtral / Qwen-MoE expert: down(silu(gate x) * up x).
// Mixtral names them w1 (gate), w3 (up), w2 (down).
import { tf } from '../backend.js';
import { disposeLinear, linear, type Linear } from './linear.js';

export interface MlpWeights {
  gate: Linear;
  up: Linear;
  down: Linear;
}

/** x: [N, d] → [N, d]. */
export function mlp(x: tf.Tensor2D, w: MlpWeights): tf.Tensor2D {
  return tf.tidy(() => {
    const g = linear(x, w.gate); // [N, ff]
    const activated = tf.mul(g, tf.sigmoid(g)); // silu(z) = z * sigmoid(z)
    return linear(tf.mul(activated, linear(x, w.up)) as tf.Tensor2D, w.down); // [N, d]
  });
}

/** Multiply-adds per token (for FLOP accounting in benchmarks). */
export function mlpMacsPerToken(hidden: number, intermediate: number): number {
  return 3 * hidden * intermediate;
}

export function disposeMlp(w: MlpWeights | undefined): void {
  if (!w) return;
  disposeLinear(w.gate);
  disposeLinear(w.up);
  disposeLinear(w.down);
}
