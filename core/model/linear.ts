// A linear layer `y = x W^T (+ b)` as torch.nn.Linear. The weight is kept
// transposed ([in, out]): it is transposed once when loaded because the wasm
// backend's matMul with transposeB is about 10x slower than without (measured:
// 1.6 vs 21 GFLOP/s for [512, 768] x [768, 2048]).
import { tf } from '../backend.js';

export interface Linear {
  /** W^T: [in, out]. */
  wT: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

/** x: [N, in] → [N, out]. */
export function linear(x: tf.Tensor2D, layer: Linear): tf.Tensor2D {
  return tf.tidy(() => {
    const y = tf.matMul(x, layer.wT); // [N, out]
    return (layer.bias ? tf.add(y, layer.bias) : y) as tf.Tensor2D;
  });
}

export function disposeLinear(layer: Linear | undefined): void {
  if (!layer) return;
  layer.wT.dispose();
  layer.bias?.dispose();
}
