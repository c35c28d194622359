// Loss, gradients and importance of a model on its calibration data, with tfjs:
//   L = mean over samples of the mean next-token cross-entropy,
//   I(θ) = |θ ⊙ ∇θ L| per element (the first-order Taylor estimate of the loss change when
//   θ is zeroed, Molchanov et al. 2019), which Sens-Merging (arXiv 2502.12420) and
//   LED-Merging (arXiv 2502.16770) both use as parameter importance,
// plus per-layer sums of I and the logits of each sample (Sens' transferability).
// One sample per pass (batch 1: no padding to mask); gradients summed in float32 on the JS side.
import { tf } from '../../core/backend.js';
import { initBackend } from '../../core/backend.js';
import { lmLogits, nextTokenLoss } from './lm-graph.js';
import type { ModelWeights } from './model-weights.js';
import { passProgress } from './progress.js';

export interface Importance {
  /** Mean loss over the samples. */
  loss: number;
  /** |θ ⊙ ∇θ L| per tensor, HF layout. */
  scores: Map<string, Float32Array>;
  /** Σ of the scores per decoder layer. */
  layerSums: number[];
  /** Σ of the scores of the tensors outside the layers (embeddings, final norm, lm_head). */
  globalSum: number;
}

/** Gradient of the mean loss over `rows` and its importance scores. */
export async function importance(m: ModelWeights, rows: number[][], label = `gradients ${m.ref}`): Promise<Importance> {
  await initBackend();
  const vars = new Map<string, tf.Variable>();
  for (const n of m.names) vars.set(n, tf.variable(tf.tensor(m.values.get(n)!, m.shapes.get(n)!), true));
  const varList = m.names.map((n) => vars.get(n)!);
  const acc = new Map<string, Float32Array>(m.names.map((n) => [n, new Float32Array(m.values.get(n)!.length)]));
  const bar = passProgress(label, rows.length);
  let lossSum = 0;
  try {
    for (const ids of rows) {
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(lmLogits(m.config, (n) => vars.get(n)!, ids), ids), varList);
      lossSum += (await value.data())[0]!;
      value.dispose();
      m.names.forEach((n) => {
        const g = grads[vars.get(n)!.name];
        if (!g) return; // a weight the loss does not reach (none in a dense causal LM)
        const a = acc.get(n)!;
        const d = g.dataSync();
        for (let i = 0; i < a.length; i++) a[i]! += d[i]!;
      });
      for (const g of Object.values(grads)) g.dispose();
      bar.tick();
    }
  } finally {
    bar.stop();
    for (const v of varList) v.dispose();
  }
  const scores = new Map<string, Float32Array>();
  const layerSums = new Array<number>(m.config.numLayers).fill(0);
  let globalSum = 0;
  for (const n of m.names) {
    const a = acc.get(n)!;
    const theta = m.values.get(n)!;
    let s = 0;
    for (let i = 0; i < a.length; i++) {
      a[i] = Math.abs((theta[i]! * a[i]!) / rows.length);
      s += a[i]!;
    }
    scores.set(n, a);
    const layer = m.layers.get(n);
    if (layer === undefined) globalSum += s;
    else layerSums[layer]! += s;
  }
  return { loss: lossSum / rows.length, scores, layerSums, globalSum };
}

/** Weights as constant tensors (for passes without gradients); dispose with disposeWeights. */
export function weightTensors(m: Pick<ModelWeights, 'names' | 'shapes' | 'values'>, values = m.values): Map<string, tf.Tensor> {
  return new Map(m.names.map((n) => [n, tf.tensor(values.get(n)!, m.shapes.get(n)!)]));
}

export function disposeWeights(w: Map<string, tf.Tensor>): void {
  for (const t of w.values()) t.dispose();
}

/** Mean next-token loss over `rows` with the given weights (HF layout, by name). */
export async function meanLoss(m: Pick<ModelWeights, 'config'>, w: Map<string, tf.Tensor>, rows: number[][]): Promise<number> {
  await initBackend();
  let sum = 0;
  for (const ids of rows) {
    const l = tf.tidy(() => nextTokenLoss(lmLogits(m.config, (n) => w.get(n)!, ids), ids));
    sum += (await l.data())[0]!;
    l.dispose();
  }
  return sum / rows.length;
}

/** Logits [T, V] of each row. */
export async function rowLogits(m: Pick<ModelWeights, 'config'>, w: Map<string, tf.Tensor>, rows: number[][]): Promise<Float32Array[]> {
  await initBackend();
  const out: Float32Array[] = [];
  for (const ids of rows) {
    const l = tf.tidy(() => lmLogits(m.config, (n) => w.get(n)!, ids));
    out.push((await l.data()) as Float32Array);
    l.dispose();
  }
  return out;
}
