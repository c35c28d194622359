// One decoder layer (LlamaDecoderLayer and its relatives), pre-norm residual:
//   h = h + Attention(RMSNorm(h; input_layernorm))
//   h = h + FFN(RMSNorm(h; post_attention_layernorm))
// where FFN is the dense MLP or, in sparse layers, the MoE block. The
// post-attention-norm output is what a router reads: it is handed out as the
// router input (for gates computed from hidden states) when asked.
import { tf } from '../backend.js';
import { attention, disposeAttention, type AttentionInputs, type AttentionShape, type AttentionWeights } from './attention.js';
import type { LayerKv } from './kv-cache.js';
import { disposeMlp, mlp, type MlpWeights } from './mlp.js';
import { disposeMoe, sparseMoe, type MoeWeights } from './moe.js';
import { rmsNorm } from './rms-norm.js';

export interface LayerWeights {
  layer: number;
  inputNorm: tf.Tensor1D;
  postAttnNorm: tf.Tensor1D;
  attn: AttentionWeights;
  /** Dense layers. */
  mlp?: MlpWeights;
  /** Sparse layers. */
  moe?: MoeWeights;
  /** float32 bytes held by these weights. */
  bytes: number;
}

export interface LayerOutputs {
  routerInput?: Float32Array; // [B*T, d]
  routerLogits?: Float32Array; // [B*T, E]
}

export interface MoeSettings {
  expertsPerToken: number;
  normTopkProb: boolean;
}

/** h: [B*T, d] → [B*T, d]; h itself is left to the caller to dispose. */
export function decoderLayer(
  h: tf.Tensor2D,
  w: LayerWeights,
  shape: AttentionShape,
  inputs: AttentionInputs,
  moe: MoeSettings | undefined,
  cache: LayerKv | undefined,
  want: { routerInput: boolean },
): { h: tf.Tensor2D } & LayerOutputs {
  const normed = rmsNorm(h, w.inputNorm, shape.rmsNormEps); // [B*T, d]
  const attnOut = attention(normed, w.attn, shape, inputs, cache); // [B*T, d]
  normed.dispose();
  const h1 = tf.add(h, attnOut) as tf.Tensor2D;
  attnOut.dispose();
  const x = rmsNorm(h1, w.postAttnNorm, shape.rmsNormEps); // [B*T, d]
  const result: LayerOutputs = {};
  if (want.routerInput) result.routerInput = x.dataSync() as Float32Array;
  let ffn: tf.Tensor2D;
  if (w.moe) {
    if (!moe) throw new Error(`layer ${w.layer} has MoE weights but the config has no MoE settings`);
    const r = sparseMoe(x, w.moe, moe.expertsPerToken, moe.normTopkProb);
    ffn = r.out;
    result.routerLogits = r.routerLogits;
  } else {
    ffn = mlp(x, w.mlp!);
  }
  x.dispose();
  const h2 = tf.add(h1, ffn) as tf.Tensor2D;
  h1.dispose();
  ffn.dispose();
  return { h: h2, ...result };
}

export function disposeLayer(w: LayerWeights): void {
  w.inputNorm.dispose();
  w.postAttnNorm.dispose();
  disposeAttention(w.attn);
  disposeMlp(w.mlp);
  disposeMoe(w.moe);
}
