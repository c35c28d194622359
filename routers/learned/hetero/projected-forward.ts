// The projected path of expert e (MergeME §3.2):
//   x = embed[ids] · proj_inᵀ → e's decoder layers → e's final norm → · proj_outᵀ → · lm_headᵀ
// i.e. expert e run as a causal LM whose embed_tokens = embed · proj_inᵀ and
// lm_head = lm_head_shared · proj_out (the identity the inference engine uses).
// Matrices are held transposed ([in, out]), as core/model/linear.ts holds weights.
import { initBackend, tf } from '../../../core/backend.js';
import type { ProjectedWeights } from '../../../core/plugins.js';
import { disposeBatch, type Batch } from '../lm-batch.js';
import { disposeFrozenExpert, expertBatch, loadFrozenExpert, runStack, type FrozenExpert } from './frozen-expert.js';
import { transpose } from './projected-init.js';

export interface SharedTensors {
  embed: tf.Tensor2D; // [V, D]
  lmHeadT: tf.Tensor2D; // [D, V]
}

export interface ProjTensors {
  projInT: tf.Tensor2D; // [D, d_e]
  projOutT: tf.Tensor2D; // [d_e, D]
}

/**
 * Logits [B*T, V] of the projected path. `embedGrad`: look the embedding up by a one-hot
 * product instead of gather, because gather's gradient needs UnsortedSegmentSum, a kernel
 * the wasm backend lacks (equal values: a one-hot row picks one row exactly).
 */
export function projectedLogits(x: FrozenExpert, shared: SharedTensors, proj: ProjTensors, b: Batch, embedGrad: boolean): tf.Tensor2D {
  const V = x.config.vocabSize;
  const e = embedGrad ? tf.matMul(tf.oneHot(b.ids, V).toFloat(), shared.embed) : tf.gather(shared.embed, b.ids); // [B*T, D]
  const h = runStack(tf.matMul(e, proj.projInT), x, b); // [B*T, d_e]
  return tf.matMul(tf.matMul(h, proj.projOutT), shared.lmHeadT); // [B*T, D] → [B*T, V]
}

/**
 * Logits [B*T, V] (rows padded to the longest sequence) of expert `index` of projected
 * weights `w` on `seqs`, loading the expert from `folder`: to check an engine against.
 */
export async function projectedForward(folder: string, w: Pick<ProjectedWeights, 'sharedHiddenSize' | 'embed' | 'lmHead' | 'projIn' | 'projOut'>, index: number, seqs: number[][]): Promise<Float32Array> {
  await initBackend();
  const x = await loadFrozenExpert(folder, `experts[${index}]`);
  const b = expertBatch(x, seqs);
  try {
    const D = w.sharedHiddenSize;
    const d = x.config.hiddenSize;
    const V = x.config.vocabSize;
    const logits = tf.tidy(() =>
      projectedLogits(
        x,
        { embed: tf.tensor2d(w.embed, [V, D]), lmHeadT: tf.tensor2d(transpose(w.lmHead, V, D), [D, V]) },
        { projInT: tf.tensor2d(transpose(w.projIn[index]!, d, D), [D, d]), projOutT: tf.tensor2d(transpose(w.projOut[index]!, D, d), [d, D]) },
        b,
        false,
      ),
    );
    const out = logits.dataSync() as Float32Array;
    logits.dispose();
    return out;
  } finally {
    disposeBatch(b);
    await disposeFrozenExpert(x);
  }
}
