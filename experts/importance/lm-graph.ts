// A differentiable causal-LM pass for the data-driven merges: the engine's own
// decoderLayer / rmsNorm / linear / RoPE (core/model/) over weights given in Hugging
// Face layout ([out, in]) by name, so gradients reach every weight and the merges
// can build the weights as expressions (DivMerge's base + Σ cᵢ δᵢ). Three differences
// from CausalLM.run, all for gradients on the wasm backend (DESIGN.md §5, as
// benchmarks/zoo/model.ts): the embedding lookup is a one-hot matMul (gather's
// gradient is missing on wasm), GQA repeats the K/V projection rows per query head
// (the engine's rank-5 tile has no gradient in tfjs 4.22; RoPE acts per head, so the
// keys and values are exactly repeat_kv's), and the pass stays inside one tape.
import { tf } from '../../core/backend.js';
import { getArchitecture, tensorName } from '../../core/architectures/index.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import { MoeforgeError } from '../../core/errors.js';
import { decoderLayer, type LayerWeights } from '../../core/model/decoder-layer.js';
import type { Linear } from '../../core/model/linear.js';
import { linear } from '../../core/model/linear.js';
import { rmsNorm } from '../../core/model/rms-norm.js';
import { ropeInvFreq, ropeTables } from '../../core/model/rope.js';
import type { TensorRole } from '../../core/roles.js';

/** A weight by its HF tensor name, in HF layout. */
export type WeightFn = (name: string) => tf.Tensor;

/** Refuses what the differentiable pass does not cover (MoE checkpoints). */
export function checkDense(config: NormalizedConfig, where: string): void {
  if (config.moe) {
    throw new MoeforgeError('unsupported_format', `calibration passes need a dense model; this is ${config.modelType}`, { path: where });
  }
}

/** HF-name lookup for a config's roles. */
export function namer(config: NormalizedConfig): (role: TensorRole, layer?: number) => string {
  const arch = getArchitecture(config.modelType);
  return (role, layer) => tensorName(arch, { role, layer });
}

/** [nKv*hD, …] rows → [nH*hD, …]: each KV head's rows repeated for its query group. */
function repeatKvRows<T extends tf.Tensor>(w: T, numKvHeads: number, groups: number): T {
  if (groups === 1) return w;
  const heads = tf.split(w, numKvHeads, 0); // nKv × [hD, …]
  return tf.concat(heads.flatMap((h) => Array<tf.Tensor>(groups).fill(h)), 0) as T; // [nH*hD, …]
}

/** Causal (+ sliding window) additive mask [1, 1, T, T]. */
function causalMask(seqLen: number, window: number | null): tf.Tensor4D {
  const m = new Float32Array(seqLen * seqLen);
  for (let i = 0; i < seqLen; i++) {
    for (let j = 0; j < seqLen; j++) if (j > i || (window !== null && i - j >= window)) m[i * seqLen + j] = -1e30;
  }
  return tf.tensor4d(m, [1, 1, seqLen, seqLen]);
}

/**
 * One sequence ids [T] → logits [T, V], or a batch of equal-length rows [B][T] → [B*T, V]
 * (right padding needs no mask: causal attention never looks ahead), differentiable in
 * every weight `w` returns.
 */
export function lmLogits(config: NormalizedConfig, w: WeightFn, ids: number[] | number[][]): tf.Tensor2D {
  const c = config;
  const name = namer(c);
  const rows = (Array.isArray(ids[0]) ? ids : [ids]) as number[][];
  const batch = rows.length;
  const seqLen = rows[0]!.length;
  const groups = c.numHeads / c.numKvHeads;
  const lin = (role: TensorRole, layer: number, bias?: TensorRole, kv = false): Linear => {
    let weight = w(name(role, layer)); // [out, in]
    let b = bias ? (w(name(bias, layer)) as tf.Tensor1D) : undefined;
    if (kv) {
      weight = repeatKvRows(weight, c.numKvHeads, groups);
      if (b) b = repeatKvRows(b, c.numKvHeads, groups);
    }
    return b ? { wT: tf.transpose(weight) as tf.Tensor2D, bias: b } : { wT: tf.transpose(weight) as tf.Tensor2D };
  };
  const invFreq = ropeInvFreq(c.rope, c.headDim, seqLen, c.maxPositionEmbeddings);
  const { cos, sin } = ropeTables(invFreq, [rows[0]!.map((_, t) => t)]); // [1, 1, T, hD], broadcast over B
  const masks = new Map<number | null, tf.Tensor4D>();
  for (const win of new Set(c.slidingWindows)) masks.set(win, causalMask(seqLen, win));
  const embed = w(name('embed')) as tf.Tensor2D; // [V, d]
  const oneHot = tf.oneHot(tf.tensor1d(rows.flat(), 'int32'), c.vocabSize).toFloat() as tf.Tensor2D; // [B*T, V]
  let h = tf.matMul(oneHot, embed) as tf.Tensor2D; // [B*T, d]
  for (let l = 0; l < c.numLayers; l++) {
    const layer: LayerWeights = {
      layer: l,
      inputNorm: w(name('input_norm', l)) as tf.Tensor1D,
      postAttnNorm: w(name('post_attn_norm', l)) as tf.Tensor1D,
      attn: {
        q: lin('attn_q', l, c.attentionBias ? 'attn_q_bias' : undefined),
        k: lin('attn_k', l, c.attentionBias ? 'attn_k_bias' : undefined, true),
        v: lin('attn_v', l, c.attentionBias ? 'attn_v_bias' : undefined, true),
        o: lin('attn_o', l, c.attentionOutBias ? 'attn_o_bias' : undefined),
      },
      mlp: { gate: lin('mlp_gate', l), up: lin('mlp_up', l), down: lin('mlp_down', l) },
      bytes: 0,
    };
    if (c.qkNorm) {
      layer.attn.qNorm = w(name('attn_q_norm', l)) as tf.Tensor1D;
      layer.attn.kNorm = w(name('attn_k_norm', l)) as tf.Tensor1D;
    }
    h = decoderLayer(
      h,
      layer,
      { batch, seqLen, numHeads: c.numHeads, numKvHeads: c.numHeads, headDim: c.headDim, rmsNormEps: c.rmsNormEps },
      { cos, sin, mask: masks.get(c.slidingWindows[l] ?? null)! },
      undefined,
      undefined,
      { routerInput: false },
    ).h;
  }
  // Tied embeddings: transformers points lm_head at embed_tokens (tie_weights).
  const head = c.tieWordEmbeddings ? embed : (w(name('lm_head')) as tf.Tensor2D); // [V, d]
  return linear(rmsNorm(h, w(name('final_norm')) as tf.Tensor1D, c.rmsNormEps), { wT: tf.transpose(head) as tf.Tensor2D }); // [B*T, V]
}

/** Mean next-token cross-entropy of one sequence from its logits [T, V]. */
export function nextTokenLoss(logits: tf.Tensor2D, ids: number[]): tf.Scalar {
  const [t, v] = logits.shape;
  const pred = tf.slice(logits, [0, 0], [t - 1, v]); // positions 0..T-2 predict 1..T-1
  const logp = tf.logSoftmax(pred);
  const target = tf.oneHot(tf.tensor1d(ids.slice(1), 'int32'), v).toFloat();
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, target), -1))) as tf.Scalar;
}
