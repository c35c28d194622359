// The 2-norm condition number of a gate matrix [E, d], as torch.linalg.cond computes it
// (σ_max / σ_min). mergekit-moe (mergekit/moe/router.py, `warn_degenerate_gates`) warns
// above 5: the experts' gate vectors are then nearly linearly dependent and some expert
// will receive few tokens. The singular values come from the E×E Gram matrix G Gᵀ
// (E ≤ d, so σᵢ² are its eigenvalues), found with cyclic Jacobi rotations in float64.

export const DEGENERATE_CONDITION = 5;

/** Eigenvalues of a symmetric matrix [n, n] (row-major), by cyclic Jacobi. */
export function symmetricEigenvalues(a: Float64Array, n: number): number[] {
  const m = Float64Array.from(a);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p]!;
          const akq = m[k * n + q]!;
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k]!;
          const aqk = m[q * n + k]!;
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => m[i * n + i]!);
}

/** Singular values of w [rows, cols] (rows ≤ cols), largest first. */
export function singularValues(w: ArrayLike<number>, rows: number, cols: number): number[] {
  const gram = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = i; j < rows; j++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += w[i * cols + k]! * w[j * cols + k]!;
      gram[i * rows + j] = gram[j * rows + i] = s;
    }
  }
  return symmetricEigenvalues(gram, rows)
    .map((v) => Math.sqrt(Math.max(v, 0)))
    .sort((a, b) => b - a);
}

/** σ_max / σ_min; Infinity for a rank-deficient gate (torch gives inf or a huge number). */
export function conditionNumber(w: ArrayLike<number>, rows: number, cols: number): number {
  const s = singularValues(w, rows, cols);
  const min = s[s.length - 1]!;
  return min <= s[0]! * 1e-12 ? Infinity : s[0]! / min;
}
