// Combining weighted task vectors, elementwise, as mergekit's GTATask does
// (mergekit/merge_methods/generalized_task_arithmetic.py):
//   consensus 'sum' (TIES sign election, arXiv 2306.01708): the majority sign of each element is the
//   sign of Σᵢ wᵢδᵢ (ties → +); only the wᵢδᵢ with that sign (zeros never) are summed, and
//   `normalize` divides by the sum of their weights (the disjoint mean; 0 → 1).
//   no consensus: Σᵢ wᵢδᵢ, `normalize` dividing by Σᵢ wᵢ (|Σ| < 1e-8 → 1).
// Then × lambda, + base.

export type ConsensusMethod = 'sum' | null;

export interface CombineOptions {
  consensus: ConsensusMethod;
  normalize: boolean;
  lambda: number;
}

/** Scratch buffers reused across chunks (one set per tensor merge). */
export class CombineScratch {
  private total = new Float32Array(0);
  private mixed = new Float32Array(0);
  private divisor = new Float32Array(0);
  get(n: number): [Float32Array, Float32Array, Float32Array] {
    if (this.total.length < n) {
      this.total = new Float32Array(n);
      this.mixed = new Float32Array(n);
      this.divisor = new Float32Array(n);
    }
    return [this.total.subarray(0, n), this.mixed.subarray(0, n), this.divisor.subarray(0, n)];
  }
}

/**
 * out[i] = base[i] + lambda · mix(weights, deltas)[i]. `deltas` are unweighted (already sparsified).
 * Loops run per model over contiguous arrays (what the JIT vectorises best), accumulating in float32
 * scratch rows.
 */
export function combineChunk(
  out: Float32Array,
  base: Float32Array,
  deltas: Float32Array[],
  weights: number[],
  opts: CombineOptions,
  scratch: CombineScratch = new CombineScratch(),
): void {
  const m = deltas.length;
  const n = out.length;
  const lambda = opts.lambda;
  if (opts.consensus === 'sum') {
    const [total, mixed, divisor] = scratch.get(n);
    total.fill(0);
    mixed.fill(0);
    divisor.fill(0);
    for (let j = 0; j < m; j++) {
      const d = deltas[j]!;
      const w = weights[j]!;
      for (let i = 0; i < n; i++) total[i] += w * d[i]!;
    }
    // total becomes the elected sign (±1): then agreement is wd·sign > 0, added without a branch
    // (random signs make a branch here mispredict half the time).
    for (let i = 0; i < n; i++) total[i] = total[i]! >= 0 ? 1 : -1;
    for (let j = 0; j < m; j++) {
      const d = deltas[j]!;
      const w = weights[j]!;
      for (let i = 0; i < n; i++) {
        const wd = w * d[i]!;
        const agree = +(wd * total[i]! > 0);
        mixed[i] += wd * agree;
        divisor[i] += w * agree;
      }
    }
    for (let i = 0; i < n; i++) {
      let v = mixed[i]!;
      if (opts.normalize) {
        const dv = divisor[i]!;
        v /= dv === 0 ? 1 : dv;
      }
      out[i] = base[i]! + lambda * v;
    }
    return;
  }
  let div = 1;
  if (opts.normalize) {
    const s = weights.reduce((a, b) => a + b, 0);
    div = Math.abs(s) < 1e-8 ? 1 : s;
  }
  const scale = lambda / div;
  const [total] = scratch.get(n);
  total.fill(0);
  for (let j = 0; j < m; j++) {
    const d = deltas[j]!;
    const w = weights[j]!;
    for (let i = 0; i < n; i++) total[i] += w * d[i]!;
  }
  for (let i = 0; i < n; i++) out[i] = base[i]! + scale * total[i]!;
}
