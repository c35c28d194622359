// The zoo's trainable llama: the engine's own forward pieces (decoderLayer,
// rmsNorm, linear, RoPE tables from core/model/) run over tf.variable weights,
// so what is trained is exactly what CausalLM later loads, with no second
// transformer to keep in sync. Two differences from CausalLM.run, both for
// gradients on the wasm backend (DESIGN.md §5): the embedding lookup is a
// one-hot matMul (gather's gradient, UnsortedSegmentSum, is missing on wasm),
// and the whole pass stays inside one tape (no dataSync between layers).
import { tf } from '../../core/backend.js';
import { decoderLayer, type LayerWeights } from '../../core/model/decoder-layer.js';
import { linear } from '../../core/model/linear.js';
import { rmsNorm } from '../../core/model/rms-norm.js';
import { ropeInvFreq, ropeTables } from '../../core/model/rope.js';
import { Rng } from '../../core/rng.js';
import { ZOO_VOCAB_SIZE } from './tokenizer.js';

export interface ZooShape {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
}

export const DEFAULT_SHAPE: ZooShape = {
  vocabSize: ZOO_VOCAB_SIZE,
  hiddenSize: 64,
  intermediateSize: 256,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
};

export interface ZooLayerParams {
  inputNorm: tf.Variable<tf.Rank.R1>;
  postAttnNorm: tf.Variable<tf.Rank.R1>;
  // Linear weights are held as W^T [in, out], as the engine's linear() takes them.
  q: tf.Variable<tf.Rank.R2>;
  k: tf.Variable<tf.Rank.R2>;
  v: tf.Variable<tf.Rank.R2>;
  o: tf.Variable<tf.Rank.R2>;
  gate: tf.Variable<tf.Rank.R2>;
  up: tf.Variable<tf.Rank.R2>;
  down: tf.Variable<tf.Rank.R2>;
}

export interface ZooParams {
  shape: ZooShape;
  embed: tf.Variable<tf.Rank.R2>; // [V, d]
  layers: ZooLayerParams[];
  finalNorm: tf.Variable<tf.Rank.R1>;
  lmHeadT: tf.Variable<tf.Rank.R2>; // [d, V]
}

function normalVar(rng: Rng, shape: [number, number], std: number): tf.Variable<tf.Rank.R2> {
  const values = rng.fillNormal(new Float32Array(shape[0] * shape[1]), std);
  return tf.variable(tf.tensor2d(values, shape));
}

function onesVar(n: number): tf.Variable<tf.Rank.R1> {
  return tf.variable(tf.ones([n]) as tf.Tensor1D);
}

/**
 * Fresh weights: N(0, 1/fan_in) for the projections (so activations keep their
 * scale in a model this narrow; GPT-2's fixed 0.02 trains too slowly at d=64),
 * residual outputs (o, down) scaled by 1/sqrt(2L) as GPT-2 does, norms at 1.
 */
export function initParams(shape: ZooShape, seed: number): ZooParams {
  const rng = new Rng(seed).derive('zoo/init');
  const d = shape.hiddenSize;
  const hD = d / shape.numHeads;
  const ff = shape.intermediateSize;
  const residual = 1 / Math.sqrt(2 * shape.numLayers);
  const layers: ZooLayerParams[] = [];
  for (let l = 0; l < shape.numLayers; l++) {
    const r = rng.derive(`layer${l}`);
    layers.push({
      inputNorm: onesVar(d),
      postAttnNorm: onesVar(d),
      q: normalVar(r, [d, shape.numHeads * hD], d ** -0.5),
      k: normalVar(r, [d, shape.numKvHeads * hD], d ** -0.5),
      v: normalVar(r, [d, shape.numKvHeads * hD], d ** -0.5),
      o: normalVar(r, [shape.numHeads * hD, d], d ** -0.5 * residual),
      gate: normalVar(r, [d, ff], d ** -0.5),
      up: normalVar(r, [d, ff], d ** -0.5),
      down: normalVar(r, [ff, d], ff ** -0.5 * residual),
    });
  }
  return {
    shape,
    embed: normalVar(rng.derive('embed'), [shape.vocabSize, d], 1),
    layers,
    finalNorm: onesVar(d),
    lmHeadT: normalVar(rng.derive('lm_head'), [d, shape.vocabSize], d ** -0.5),
  };
}

/** The MLP weights of the given layers (default: every layer). */
export function mlpVariables(p: ZooParams, layers?: number[]): tf.Variable[] {
  return (layers ?? p.layers.map((_, i) => i)).flatMap((i) => [p.layers[i]!.gate, p.layers[i]!.up, p.layers[i]!.down]);
}

export function allVariables(p: ZooParams): tf.Variable[] {
  return [p.embed, ...p.layers.flatMap((l) => [l.inputNorm, l.postAttnNorm, l.q, l.k, l.v, l.o, l.gate, l.up, l.down]), p.finalNorm, p.lmHeadT];
}

/** A deep copy (an expert starts as a copy of the base). */
export function cloneParams(p: ZooParams): ZooParams {
  const c = <R extends tf.Rank>(v: tf.Variable<R>): tf.Variable<R> => tf.variable(v.clone() as tf.Tensor<R>);
  return {
    shape: p.shape,
    embed: c(p.embed),
    layers: p.layers.map((l) => ({
      inputNorm: c(l.inputNorm),
      postAttnNorm: c(l.postAttnNorm),
      q: c(l.q),
      k: c(l.k),
      v: c(l.v),
      o: c(l.o),
      gate: c(l.gate),
      up: c(l.up),
      down: c(l.down),
    })),
    finalNorm: c(p.finalNorm),
    lmHeadT: c(p.lmHeadT),
  };
}

export function disposeParams(p: ZooParams): void {
  for (const v of allVariables(p)) v.dispose();
}

/** Constant per (B, T): RoPE tables for positions 0..T-1 and the additive causal mask. */
export interface PassConstants {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  mask: tf.Tensor4D;
}

export function passConstants(shape: ZooShape, batch: number, seqLen: number): PassConstants {
  const hD = shape.hiddenSize / shape.numHeads;
  const invFreq = ropeInvFreq({ type: 'default', theta: shape.ropeTheta }, hD, seqLen, 2048);
  const positions = Array.from({ length: batch }, () => Array.from({ length: seqLen }, (_, t) => t));
  const { cos, sin } = ropeTables(invFreq, positions);
  // Causal only: sequences are right-padded and padded positions carry no loss,
  // so no real token ever attends to padding.
  const m = new Float32Array(batch * seqLen * seqLen);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < seqLen; i++) for (let j = i + 1; j < seqLen; j++) m[(b * seqLen + i) * seqLen + j] = -1e30;
  }
  return { cos, sin, mask: tf.tensor4d(m, [batch, 1, seqLen, seqLen]) };
}

/**
 * GQA for training: repeating the KV projection's columns per query head gives
 * exactly repeat_kv's keys/values (RoPE acts per head), and is differentiable on
 * every backend, where the engine's rank-5 tile has no gradient in tfjs 4.22.
 * W^T [d, nKv*hD] → [d, nH*hD].
 */
function repeatKvColumns(wT: tf.Tensor2D, s: ZooShape): tf.Tensor2D {
  const hD = s.hiddenSize / s.numHeads;
  const groups = s.numHeads / s.numKvHeads;
  if (groups === 1) return wT;
  const heads = tf.split(wT, s.numKvHeads, 1); // nKv × [d, hD]
  return tf.concat(heads.flatMap((h) => Array<tf.Tensor2D>(groups).fill(h as tf.Tensor2D)), 1) as tf.Tensor2D; // [d, nH*hD]
}

/** ids [B, T] → logits [B*T, V], differentiable in every weight. */
export function forwardLogits(p: ZooParams, ids: number[][], k: PassConstants): tf.Tensor2D {
  const s = p.shape;
  const batch = ids.length;
  const seqLen = ids[0]!.length;
  const oneHot = tf.oneHot(tf.tensor1d(ids.flat(), 'int32'), s.vocabSize).toFloat() as tf.Tensor2D; // [B*T, V]
  let h = tf.matMul(oneHot, p.embed) as tf.Tensor2D; // [B*T, d]
  for (let l = 0; l < s.numLayers; l++) {
    const L = p.layers[l]!;
    const w: LayerWeights = {
      layer: l,
      inputNorm: L.inputNorm,
      postAttnNorm: L.postAttnNorm,
      attn: { q: { wT: L.q }, k: { wT: repeatKvColumns(L.k, s) }, v: { wT: repeatKvColumns(L.v, s) }, o: { wT: L.o } },
      mlp: { gate: { wT: L.gate }, up: { wT: L.up }, down: { wT: L.down } },
      bytes: 0,
    };
    h = decoderLayer(
      h,
      w,
      { batch, seqLen, numHeads: s.numHeads, numKvHeads: s.numHeads, headDim: s.hiddenSize / s.numHeads, rmsNormEps: s.rmsNormEps },
      { cos: k.cos, sin: k.sin, mask: k.mask },
      undefined,
      undefined,
      { routerInput: false },
    ).h;
  }
  return linear(rmsNorm(h, p.finalNorm, s.rmsNormEps), { wT: p.lmHeadT }); // [B*T, V]
}

/** Mean cross-entropy over the positions with weight 1. logits [N, V], targets/weights [N]. */
export function maskedCrossEntropy(logits: tf.Tensor2D, targets: number[], weights: number[]): tf.Scalar {
  const v = logits.shape[1];
  const logp = tf.logSoftmax(logits); // [N, V]
  const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, 'int32'), v).toFloat()), -1); // [N]
  const w = tf.tensor1d(weights);
  return tf.div(tf.neg(tf.sum(tf.mul(picked, w))), Math.max(1, weights.reduce((a, b) => a + b, 0))) as tf.Scalar;
}
