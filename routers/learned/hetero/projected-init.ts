// MergeME's initialisation of the projected form (arXiv 2502.00997 §3.2): the shared
// embedding and LM head of width D = max d_e are the means over experts of each
// expert's own, zero-padded on the right to D columns; proj_in_e = [I | 0] keeps the
// first d_e coordinates and proj_out_e = [I; 0] pads back, so that with one expert
// (D = d_e) the projected path is the expert itself.
import type { FrozenExpert } from './frozen-expert.js';

export interface ProjectedInit {
  sharedHiddenSize: number;
  embed: Float32Array; // [V, D]
  lmHead: Float32Array; // [V, D]
  projIn: Float32Array[]; // [d_e, D]
  projOut: Float32Array[]; // [D, d_e]
}

/** [rows, cols] row-major → [cols, rows]. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]!;
  return out;
}

/** Mean of [V, d_e] matrices, each zero-padded on the right to [V, D]. */
export function meanPadded(mats: { data: Float32Array; cols: number }[], rows: number, D: number): Float32Array {
  const acc = new Float64Array(rows * D);
  for (const { data, cols } of mats) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) acc[r * D + c]! += data[r * cols + c]!;
  return Float32Array.from(acc, (v) => v / mats.length);
}

/** [d, D] = [I_d | 0]. */
export function identityProjIn(d: number, D: number): Float32Array {
  const m = new Float32Array(d * D);
  for (let i = 0; i < d; i++) m[i * D + i] = 1;
  return m;
}

/** [D, d] = [I_d; 0]. */
export function identityProjOut(d: number, D: number): Float32Array {
  const m = new Float32Array(D * d);
  for (let i = 0; i < d; i++) m[i * d + i] = 1;
  return m;
}

export function initProjected(experts: FrozenExpert[]): ProjectedInit {
  const V = experts[0]!.config.vocabSize;
  const D = Math.max(...experts.map((x) => x.config.hiddenSize));
  const embeds = experts.map((x) => ({ data: x.embed.embed.dataSync() as Float32Array, cols: x.config.hiddenSize }));
  // lm_head as stored is [V, d]; the loader holds its transpose (the embedding's when tied).
  const heads = experts.map((x) => ({ data: transpose(x.head.lmHeadT.dataSync() as Float32Array, x.config.hiddenSize, V), cols: x.config.hiddenSize }));
  return {
    sharedHiddenSize: D,
    embed: meanPadded(embeds, V, D),
    lmHead: meanPadded(heads, V, D),
    projIn: experts.map((x) => identityProjIn(x.config.hiddenSize, D)),
    projOut: experts.map((x) => identityProjOut(x.config.hiddenSize, D)),
  };
}
