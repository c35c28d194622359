// Full-batch Adam with early stopping, as every trained part of moeforge runs it (the
// lm-objective routers, the projected form's projections): at most `steps` steps, a
// step counts as better when the held-out loss drops by more than 1e-6, training stops
// after `patience` steps without one, and the best snapshot is returned.
import { tf } from '../../core/backend.js';

export interface EarlyStoppingRun<T> {
  best: T;
  /** Steps taken (≤ steps). */
  steps: number;
  /** The step whose weights are `best` (0: the starting weights). */
  bestStep: number;
}

export function adamWithEarlyStopping<T>(o: {
  steps: number;
  lr: number;
  patience: number;
  /** The training loss (called inside optimizer.minimize). */
  loss: () => tf.Scalar;
  vars: tf.Variable[];
  /** The held-out loss of the current weights. */
  heldOutLoss: () => number;
  /** The current weights, copied. */
  snapshot: () => T;
}): EarlyStoppingRun<T> {
  let best = o.snapshot();
  let bestLoss = o.heldOutLoss();
  let bestStep = 0;
  let step = 0;
  const optimizer = tf.train.adam(o.lr);
  try {
    for (step = 1; step <= o.steps; step++) {
      optimizer.minimize(o.loss, false, o.vars);
      const l = o.heldOutLoss();
      if (l < bestLoss - 1e-6) {
        bestLoss = l;
        bestStep = step;
        best = o.snapshot();
      } else if (step - bestStep >= o.patience) {
        break;
      }
    }
  } finally {
    optimizer.dispose();
  }
  return { best, steps: Math.min(step, o.steps), bestStep };
}
