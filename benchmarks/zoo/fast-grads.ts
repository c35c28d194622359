// A faster gradient for matMul on the wasm backend, for zoo training only.
// tfjs's BatchMatMul gradient computes dA = matMul(dy, b, false, true) and
// dB = matMul(a, dy, true, false); wasm's matMul with a transposed operand is
// about 10x slower than a plain one (measured in core/model/linear.ts), which
// made a training step's backward pass ~9x its forward. Transposing explicitly
// first gives the same values (same products, same summation order per output
// element is not guaranteed, so results agree to float32 rounding).
import { tf } from '../../core/backend.js';

/** Swaps the last two axes. */
function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return tf.transpose(x, perm);
}

let installed = false;

/** Replaces BatchMatMul's gradient (process-wide; idempotent). */
export function installFastMatMulGradient(): void {
  if (installed) return;
  installed = true;
  const original = tf.getGradient('BatchMatMul');
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      // Only the plain case (all the engine uses) with equal ranks; the rest as tfjs does.
      if (transposeA || transposeB || a.rank !== b.rank || !original) return original!.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor;
      return { a: () => tf.matMul(g, swapLast(b)), b: () => tf.matMul(swapLast(a), g) };
    },
  });
}
