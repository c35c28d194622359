// `objective: lm`: the routers of the whole MoE trained on the next-token loss of the
// experts' data, every other weight frozen, as Branch-Train-MiX (arXiv 2403.07816)
// fine-tunes its router after merging. For models that fit in memory: all weights are
// held as float32 and every expert runs on every token (a dense evaluation of the MoE,
// equal to the sparse one: unselected experts get weight 0), so the cost is E/k times
// a sparse pass. Routing is Mixtral's: softmax over all experts, top-k selected (a
// constant mask, as the selection has no gradient), the k weights renormalised; the
// gradient reaches each router through the selected weights and through the inputs of
// later layers. Full-batch Adam, held-out sequences (stratified per expert) for early
// stopping, best routers kept.
import { initBackend, tf } from '../../core/backend.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import { disposeLayer, type LayerWeights } from '../../core/model/decoder-layer.js';
import { linear } from '../../core/model/linear.js';
import { mlp, type MlpWeights } from '../../core/model/mlp.js';
import { rmsNorm } from '../../core/model/rms-norm.js';
import { ropeInvFreq } from '../../core/model/rope.js';
import { WeightLoader, type EmbedWeights, type HeadWeights } from '../../core/model/weights.js';
import type { Rng } from '../../core/rng.js';
import { attentionForTraining } from './attention-grad.js';
import { adamWithEarlyStopping } from './early-stopping.js';
import { holdoutSequences } from './label-trainer.js';
import { batchNll, disposeBatch, makeBatch, type Batch } from './lm-batch.js';

export interface LmTrainOptions {
  epochs: number;
  lr: number;
  holdout: number;
  patience: number;
  expertsPerToken: number;
  normTopkProb: boolean;
}

export interface LmTrainResult {
  /** Router weights per layer, [E, d] row-major. */
  gates: Float32Array[];
  /** Mean next-token loss (nats per predicted token) over all the data: initial gates, trained gates. */
  initialLoss: number;
  finalLoss: number;
  /** The same on the held-out sequences (null when none). */
  initialHeldOutLoss: number | null;
  finalHeldOutLoss: number | null;
  steps: number;
  bestStep: number;
}

/** Top-k mask [N, E] of the rows of probs (lower index first on ties), as a constant. */
function topkMask(probs: Float32Array, n: number, E: number, k: number): tf.Tensor2D {
  const m = new Float32Array(n * E);
  const order = Array.from({ length: E }, (_, i) => i);
  for (let t = 0; t < n; t++) {
    const row = probs.subarray(t * E, (t + 1) * E);
    order.sort((a, b) => row[b]! - row[a]! || a - b);
    for (let j = 0; j < k; j++) m[t * E + order[j]!] = 1;
  }
  return tf.tensor2d(m, [n, E]);
}

/** Trains the routers of the MoE assembled from `baseFolder` (attention, norms, head) and `expertFolders` (FFNs). */
export async function trainLmObjective(
  baseFolder: string,
  expertFolders: string[],
  layers: number[],
  init: Float32Array[],
  data: { ids: number[][]; experts: number[] },
  o: LmTrainOptions,
  rng: Rng,
): Promise<LmTrainResult> {
  await initBackend();
  const base = await WeightLoader.open(baseFolder);
  const loaders: WeightLoader[] = [];
  let embed: EmbedWeights | undefined;
  let head: HeadWeights | undefined;
  const baseLayers: LayerWeights[] = [];
  const expertLayers: LayerWeights[][] = [];
  const batches: Batch[] = [];
  const routers: tf.Variable[] = [];
  try {
    for (const f of expertFolders) loaders.push(await WeightLoader.open(f));
    const c = base.config;
    const E = expertFolders.length;
    const d = c.hiddenSize;
    embed = await base.loadEmbed();
    head = await base.loadHead();
    for (const l of layers) {
      baseLayers.push(await base.loadLayer(l));
      const row: LayerWeights[] = [];
      for (const loader of loaders) row.push(await loader.loadLayer(l));
      expertLayers.push(row);
    }
    init.forEach((g) => routers.push(tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(g, [E, d])))))); // Gᵀ [d, E]

    // Held-out split by sequence, stratified per expert (as the label objective).
    const seqIdx = Int32Array.from(data.ids.map((_, i) => i));
    const held = holdoutSequences(Int32Array.from(data.experts), seqIdx, o.holdout, rng);
    const invFreq = ropeInvFreq(c.rope, c.headDim, Math.max(...data.ids.map((s) => s.length)), c.maxPositionEmbeddings);
    const trainSeqs = data.ids.filter((_, i) => !held.has(i));
    const heldSeqs = data.ids.filter((_, i) => held.has(i));
    const train = makeBatch(trainSeqs, c, invFreq);
    batches.push(train);
    const heldBatch = heldSeqs.length ? makeBatch(heldSeqs, c, invFreq) : undefined;
    if (heldBatch) batches.push(heldBatch);

    const k = Math.min(o.expertsPerToken, E);
    const ew = embed.embed;
    const hw = head;
    /** Mean next-token loss of the MoE on a batch (a scalar, differentiable in the routers). */
    const loss = (b: Batch): tf.Scalar => {
      let h = tf.gather(ew, b.ids) as tf.Tensor2D; // [N, d]
      layers.forEach((_, li) => {
        const w = baseLayers[li]!;
        const h1 = tf.add(h, attentionForTraining(rmsNorm(h, w.inputNorm, c.rmsNormEps), w.attn, b.shape, { cos: b.cos, sin: b.sin, mask: b.mask })) as tf.Tensor2D;
        const x = rmsNorm(h1, w.postAttnNorm, c.rmsNormEps); // [N, d]
        const probs = tf.softmax(tf.matMul(x, routers[li]!)); // [N, E]
        const n = x.shape[0];
        const sel = tf.mul(probs, topkMask(probs.dataSync() as Float32Array, n, E, k)); // [N, E]
        const weights = o.normTopkProb ? tf.div(sel, tf.sum(sel, -1, true)) : sel;
        const outs = tf.stack(expertLayers[li]!.map((ew2) => mlp(x, ew2.mlp as MlpWeights)), 1); // [N, E, d]
        h = tf.add(h1, tf.sum(tf.mul(outs, tf.expandDims(weights, 2)), 1)) as tf.Tensor2D; // [N, d]
      });
      return batchNll(linear(rmsNorm(h, hw.finalNorm, c.rmsNormEps), { wT: hw.lmHeadT }), b); // logits [N, V]
    };
    const evalLoss = (b: Batch): number => {
      const t = tf.tidy(() => loss(b));
      const v = t.dataSync()[0]!;
      t.dispose();
      return v;
    };
    const allLoss = (): number => {
      const lt = evalLoss(train) * train.count;
      return heldBatch ? (lt + evalLoss(heldBatch) * heldBatch.count) / (train.count + heldBatch.count) : lt / train.count;
    };
    const snapshot = () => routers.map((r) => tf.tidy(() => tf.transpose(r)).dataSync() as Float32Array);

    const initialLoss = allLoss();
    const initialHeldOutLoss = heldBatch ? evalLoss(heldBatch) : null;
    const { best, steps, bestStep } = adamWithEarlyStopping({
      steps: o.epochs,
      lr: o.lr,
      patience: o.patience,
      loss: () => loss(train),
      vars: routers,
      heldOutLoss: () => (heldBatch ? evalLoss(heldBatch) : evalLoss(train)),
      snapshot,
    });
    best.forEach((g, li) => routers[li]!.assign(tf.tidy(() => tf.transpose(tf.tensor2d(g, [E, d])))));
    return {
      gates: best,
      initialLoss,
      finalLoss: allLoss(),
      initialHeldOutLoss,
      finalHeldOutLoss: heldBatch ? evalLoss(heldBatch) : null,
      steps,
      bestStep,
    };
  } finally {
    for (const r of routers) r.dispose();
    for (const b of batches) disposeBatch(b);
    if (embed) base.releaseEmbed(embed);
    if (head) base.releaseHead(head);
    for (const w of baseLayers) base.release(w, () => disposeLayer(w));
    expertLayers.forEach((row) => row.forEach((w, i) => loaders[i]!.release(w, () => disposeLayer(w))));
    await base.close();
    for (const l of loaders) await l.close();
  }
}
