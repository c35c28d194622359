// One expert of a heterogeneous MoE held resident as float32 tensors (its own family,
// width and depth), run differentiably through its decoder layers for training what
// surrounds it: the same computation as core/model/causal-lm.ts on a padded batch,
// with attentionForTraining (no KV cache), full causal attention (no sliding window)
// and the rope of the expert's own config.
import { tf } from '../../../core/backend.js';
import type { NormalizedConfig } from '../../../core/config/types.js';
import { MoeforgeError } from '../../../core/errors.js';
import type { LayerWeights } from '../../../core/model/decoder-layer.js';
import { linear } from '../../../core/model/linear.js';
import { mlp } from '../../../core/model/mlp.js';
import { rmsNorm } from '../../../core/model/rms-norm.js';
import { ropeInvFreq } from '../../../core/model/rope.js';
import { WeightLoader, type EmbedWeights, type HeadWeights } from '../../../core/model/weights.js';
import { attentionForTraining } from '../attention-grad.js';
import { makeBatch, type Batch } from '../lm-batch.js';

export interface FrozenExpert {
  name: string;
  config: NormalizedConfig;
  embed: EmbedWeights; // [V, d]
  head: HeadWeights; // final norm, lm_head^T [d, V]
  layers: LayerWeights[];
  loader: WeightLoader;
}

export async function loadFrozenExpert(folder: string, name: string): Promise<FrozenExpert> {
  const loader = await WeightLoader.open(folder);
  const c = loader.config;
  if (c.moe) {
    await loader.close();
    throw new MoeforgeError('incompatible_models', `a heterogeneous expert must be a dense model; ${name} is a ${c.modelType} MoE`, { path: name });
  }
  const layers: LayerWeights[] = [];
  let embed: EmbedWeights | undefined;
  try {
    embed = await loader.loadEmbed();
    for (let l = 0; l < c.numLayers; l++) layers.push(await loader.loadLayer(l));
    return { name, config: c, embed, head: await loader.loadHead(), layers, loader };
  } catch (e) {
    if (embed) loader.releaseEmbed(embed);
    for (const w of layers) loader.releaseLayer(w);
    await loader.close();
    throw e;
  }
}

export async function disposeFrozenExpert(x: FrozenExpert): Promise<void> {
  x.loader.releaseEmbed(x.embed);
  x.loader.releaseHead(x.head);
  for (const w of x.layers) x.loader.releaseLayer(w);
  await x.loader.close();
}

/** A batch of `seqs` in this expert's attention shape and rope. */
export function expertBatch(x: FrozenExpert, seqs: number[][]): Batch {
  const c = x.config;
  const invFreq = ropeInvFreq(c.rope, c.headDim, Math.max(...seqs.map((s) => s.length)), c.maxPositionEmbeddings);
  return makeBatch(seqs, c, invFreq);
}

/** h: [B*T, d] (embedded tokens) → the final norm's output [B*T, d]. Call inside tf.tidy. */
export function runStack(h: tf.Tensor2D, x: FrozenExpert, b: Batch): tf.Tensor2D {
  const eps = x.config.rmsNormEps;
  for (const w of x.layers) {
    const attn = attentionForTraining(rmsNorm(h, w.inputNorm, eps), w.attn, b.shape, { cos: b.cos, sin: b.sin, mask: b.mask });
    const h1 = tf.add(h, attn) as tf.Tensor2D; // [B*T, d]
    h = tf.add(h1, mlp(rmsNorm(h1, w.postAttnNorm, eps), w.mlp!)) as tf.Tensor2D; // [B*T, d]
  }
  return rmsNorm(h, x.head.finalNorm, eps);
}

/** The expert run unchanged: logits [B*T, V] (the reference the projected path is measured against). */
export function ownLogits(x: FrozenExpert, b: Batch): tf.Tensor2D {
  return linear(runStack(tf.gather(x.embed.embed, b.ids) as tf.Tensor2D, x, b), { wT: x.head.lmHeadT });
}
