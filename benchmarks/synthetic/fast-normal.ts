// Fast seeded normal samples for synthetic weights. Box–Muller (Rng.normal) makes
// about 10 M values/s here, which makes a 1 GiB model take 40 s; this makes two
// values per 32-bit draw by inverse-CDF lookup: each 16-bit half u picks the normal
// quantile Φ⁻¹((u + 0.5) / 65536). The result is N(0, 1) discretised to 65,536
// equiprobable levels (tails end at ±4.3σ, variance 0.9997), plenty for test weights.

import type { Rng } from '../../core/rng.js';

/** Φ⁻¹(p), Acklam's rational approximation (relative error < 1.2e-9). */
export function inverseNormalCdf(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -inverseNormalCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

let table: Float32Array | undefined;

function quantiles(): Float32Array {
  if (!table) {
    table = new Float32Array(65536); // 256 KiB: stays in cache
    for (let u = 0; u < 65536; u++) table[u] = inverseNormalCdf((u + 0.5) / 65536);
  }
  return table;
}

/** out[i] = offset + scale · z_i, z_i ~ N(0, 1) (discretised as above), consuming one draw per two values. */
export function fillNormalFast(rng: Rng, out: Float32Array, scale: number, offset = 0): Float32Array {
  const q = quantiles();
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const w = rng.nextUint32();
    out[i] = offset + scale * q[w & 0xffff]!;
    out[i + 1] = offset + scale * q[w >>> 16]!;
  }
  if (i < n) out[i] = offset + scale * q[rng.nextUint32() & 0xffff]!;
  return out;
}

/** out[i] += scale · z_i. */
export function addNormalFast(rng: Rng, out: Float32Array, scale: number): Float32Array {
  const q = quantiles();
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const w = rng.nextUint32();
    out[i] = out[i]! + scale * q[w & 0xffff]!;
    out[i + 1] = out[i + 1]! + scale * q[w >>> 16]!;
  }
  if (i < n) out[i] = out[i]! + scale * q[rng.nextUint32() & 0xffff]!;
  return out;
}
