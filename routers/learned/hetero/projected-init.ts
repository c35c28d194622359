// MergeME's initialisation of the projected form (arXiv 2502.00997 §3.2): the shared
// embedding and LM head of width D = max d_e are the means over experts of each
// expert's own, zero-padded on the right to D columns; proj_in_e = [I | 0] keeps the
// first d_e coordinates and proj_out_e = [I; 0] pads back, so that with one expert
// (D = d_e) the projected path is the expert itself.
import { tf } from '../../../core/backend.js';
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

/**
 * Solves (A + λI) X = B for a symmetric positive semi-definite A [n, n] and B [n, m], in
 * float64 by Cholesky; λ = 1e-6 · mean(diag A) (at least 1e-12) keeps a rank-deficient A
 * (fewer tokens than dimensions) solvable, giving the near minimum-norm solution.
 */
export function ridgeSolve(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i]!;
  const lambda = Math.max(1e-12, (1e-6 * trace) / n);
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]! + (i === j ? lambda : 0);
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / l[j * n + j]!;
    }
  }
  const x = Float64Array.from(b);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = x[i * m + c]!;
      for (let k = 0; k < i; k++) s -= l[i * n + k]! * x[k * m + c]!;
      x[i * m + c] = s / l[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i * m + c]!;
      for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k * m + c]!;
      x[i * m + c] = s / l[i * n + i]!;
    }
  }
  return x;
}

/**
 * The X [D, d] that best maps the shared matrix S [V, D] onto an expert's own M [V, d]:
 * argmin ‖S X − M‖² (ridge-regularised), from the normal equations SᵀS X = Sᵀ M. With the
 * shared embedding, Xᵀ is proj_in (E[ids] · proj_inᵀ ≈ the expert's own embedding rows);
 * with the shared head, X is proj_out (H · proj_out ≈ the expert's own head).
 */
export function leastSquaresMap(s: Float32Array, m: Float32Array, V: number, D: number, d: number): Float64Array {
  // The V-long products on the backend (float32); the D×D solve in float64.
  const [gramT, rhsT] = tf.tidy(() => {
    const st = tf.tensor2d(s, [V, D]);
    return [tf.matMul(st, st, true, false), tf.matMul(st, tf.tensor2d(m, [V, d]), true, false)];
  });
  const gram = Float64Array.from(gramT.dataSync());
  const rhs = Float64Array.from(rhsT.dataSync());
  gramT.dispose();
  rhsT.dispose();
  return ridgeSolve(gram, D, rhs, d);
}

/**
 * Projections fitted by least squares to each expert's own embedding and head (moeforge's
 * default, `proj_init: least_squares`): each expert starts as close to itself as a linear
 * map from the shared matrices allows (exactly itself when the vocabulary is smaller than
 * D, or with one expert), so training starts from the experts' behaviour, not from
 * MergeME's padded identity.
 */
export function leastSquaresProjections(experts: FrozenExpert[], init: ProjectedInit): Pick<ProjectedInit, 'projIn' | 'projOut'> {
  const V = experts[0]!.config.vocabSize;
  const D = init.sharedHiddenSize;
  return {
    projIn: experts.map((x) => {
      const d = x.config.hiddenSize;
      const map = leastSquaresMap(init.embed, x.embed.embed.dataSync() as Float32Array, V, D, d); // [D, d]
      return transpose(Float32Array.from(map), D, d); // proj_in [d, D]
    }),
    projOut: experts.map((x) => {
      const d = x.config.hiddenSize;
      const head = transpose(x.head.lmHeadT.dataSync() as Float32Array, d, V); // [V, d]
      return Float32Array.from(leastSquaresMap(init.lmHead, head, V, D, d)); // proj_out [D, d]
    }),
  };
}
