// Sparsification of task vectors, streamed. Same methods, parameters and semantics as
// mergekit's mergekit/sparsify.py (read there, reimplemented over chunks):
//   magnitude          keep the k = ⌊density·n⌋ largest |δ| of the tensor (TIES, arXiv 2306.01708),
//                      by exact radix selection (select.ts), not a sort.
//   random             keep each element with probability density (DARE, arXiv 2311.03099).
//   magnitude_outliers drop the ⌊gamma·n⌋ largest and then the smallest so ⌊density·n⌋ stay
//                      (Model Breadcrumbs, arXiv 2312.06795). mergekit slices `indices[n_bot:-n_top]`,
//                      which keeps nothing when n_top = 0; we keep [n_bot, n − n_top) as the paper means.
//   della_magprune     per row, keep with probability density − ε + 2ε·rank/(cols − 1), rank of |δ|
//                      ascending in the row (DELLA, arXiv 2406.11617).
// `rescale` (mergekit's RescaleNorm.l1): multiply what is kept by ‖δ‖₁ / ‖kept‖₁ over the whole
// tensor, unless either norm is below 1e-7.
// Plus `sign` quantisation (1bit-Merging, arXiv 2502.10743): δ → sign(δ) · mean|δ| per output row.
import { MoeforgeError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
import { BoundaryCursor, type RankBoundary } from './select.js';

export type SparsificationMethod = 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';

export interface SparsifyParams {
  density: number;
  gamma: number;
  epsilon: number;
}

/** One model's mask over one tensor, replayable identically in each pass. */
export interface TensorMask {
  /** Ascending |δ| ranks whose boundaries must be selected before the first pass (may be empty). */
  readonly ranks: number[];
  setBoundaries(boundaries: RankBoundary[]): void;
  /** Starts a pass over the tensor (same decisions every pass). */
  reset(): void;
  /** Zeroes the dropped elements of the next chunk (whole rows of `cols`), in place. */
  apply(delta: Float32Array, cols: number): void;
}

const keepAll: TensorMask = {
  ranks: [],
  setBoundaries() {},
  reset() {},
  apply() {},
};

/** Validates density (and DELLA's density ± epsilon, breadcrumbs' gamma) for one tensor. */
export function checkSparsifyParams(method: SparsificationMethod, p: SparsifyParams, path: string): void {
  if (!(p.density > 0 && p.density <= 1)) {
    throw new MoeforgeError('invalid_parameter', `density must be in (0, 1], got ${p.density}`, { path: `${path}density` });
  }
  if (method === 'magnitude_outliers' && !(p.gamma >= 0 && p.gamma < 1)) {
    throw new MoeforgeError('invalid_parameter', `gamma must be in [0, 1), got ${p.gamma}`, { path: `${path}gamma` });
  }
  if (method === 'della_magprune' && p.density < 1) {
    if (!(p.epsilon >= 0) || p.density - p.epsilon <= 0 || p.density + p.epsilon >= 1) {
      throw new MoeforgeError(
        'invalid_parameter',
        `density ± epsilon must lie in (0, 1), got density ${p.density} and epsilon ${p.epsilon}`,
        { path: `${path}epsilon` },
      );
    }
  }
}

export function makeMask(
  method: SparsificationMethod | null,
  p: SparsifyParams,
  n: number,
  rng: Rng,
  tensorName: string,
): TensorMask {
  if (method === null || p.density >= 1) return keepAll;
  switch (method) {
    case 'magnitude': {
      const k = Math.floor(p.density * n);
      if (k <= 0) {
        // mergekit asserts here ("not gonna zero out the whole tensor"): say which tensor and why.
        throw new MoeforgeError('invalid_parameter', `density ${p.density} keeps no element of a tensor of ${n}`, {
          path: `${tensorName}: density`,
        });
      }
      return new RangeMask([n - k, n]);
    }
    case 'magnitude_outliers': {
      const target = Math.floor(p.density * n);
      let nTop = Math.floor(p.gamma * n);
      let nBot = n - target - nTop;
      if (nBot < 0) {
        nTop += nBot;
        nBot = 0;
      }
      return new RangeMask([nBot, n - nTop]);
    }
    case 'random':
      return new BernoulliMask(p.density, rng);
    case 'della_magprune':
      return new DellaMask(p.density, p.epsilon, rng);
  }
}

/** Keeps ascending |δ| positions [lo, hi) of the tensor. */
class RangeMask implements TensorMask {
  private lo: BoundaryCursor | undefined;
  private hi: BoundaryCursor | undefined;
  constructor(readonly ranks: number[]) {}
  setBoundaries(b: RankBoundary[]): void {
    this.lo = new BoundaryCursor(b[0]!);
    this.hi = new BoundaryCursor(b[1]!);
  }
  reset(): void {
    this.lo!.reset();
    this.hi!.reset();
  }
  apply(delta: Float32Array): void {
    // Inlined BoundaryCursor.below for both boundaries (the hot loop of TIES / breadcrumbs).
    const bits = new Uint32Array(delta.buffer, delta.byteOffset, delta.length);
    const lo = this.lo!;
    const hi = this.hi!;
    const loB = lo.boundary.bits;
    const hiB = hi.boundary.bits;
    const loEqBelow = lo.boundary.rank - lo.boundary.countLess;
    const hiEqBelow = hi.boundary.rank - hi.boundary.countLess;
    let loSeen = lo.seen;
    let hiSeen = hi.seen;
    for (let i = 0; i < delta.length; i++) {
      const a = bits[i]! & 0x7fffffff;
      const belowLo = a < loB || (a === loB && loSeen++ < loEqBelow);
      const belowHi = a < hiB || (a === hiB && hiSeen++ < hiEqBelow);
      if (belowLo || !belowHi) delta[i] = 0;
    }
    lo.seen = loSeen;
    hi.seen = hiSeen;
  }
}

class BernoulliMask implements TensorMask {
  readonly ranks: number[] = [];
  private rng: Rng;
  constructor(
    private readonly density: number,
    private readonly seedRng: Rng,
  ) {
    this.rng = seedRng.derive('bernoulli');
  }
  setBoundaries(): void {}
  reset(): void {
    this.rng = this.seedRng.derive('bernoulli');
  }
  apply(delta: Float32Array): void {
    const rng = this.rng;
    // next() < p  ⇔  nextUint32() < p·2^32 (next() is nextUint32() / 2^32).
    const threshold = this.density * 0x100000000;
    for (let i = 0; i < delta.length; i++) if (!(rng.nextUint32() < threshold)) delta[i] = 0;
  }
}

class DellaMask implements TensorMask {
  readonly ranks: number[] = [];
  private rng: Rng;
  constructor(
    private readonly density: number,
    private readonly epsilon: number,
    private readonly seedRng: Rng,
  ) {
    this.rng = seedRng.derive('della');
  }
  setBoundaries(): void {}
  reset(): void {
    this.rng = this.seedRng.derive('della');
  }
  apply(delta: Float32Array, cols: number): void {
    const order = new Uint32Array(cols);
    const prob = new Float64Array(cols);
    const low = this.density - this.epsilon;
    for (let r = 0; r < delta.length; r += cols) {
      const row = delta.subarray(r, r + cols);
      for (let i = 0; i < cols; i++) order[i] = i;
      // Ascending |δ|, ties by index: rank 0 … cols − 1 (mergekit: argsort of argsort, + 1, min-max normalised).
      order.sort((a, b) => Math.abs(row[a]!) - Math.abs(row[b]!) || a - b);
      for (let rank = 0; rank < cols; rank++) {
        const norm = cols > 1 ? rank / (cols - 1) : 0.5;
        prob[order[rank]!] = low + norm * 2 * this.epsilon;
      }
      for (let i = 0; i < cols; i++) if (!(this.rng.next() < prob[i]!)) row[i] = 0;
    }
  }
}

/** 1bit-Merging (arXiv 2502.10743): each row of δ becomes sign(δ) · mean|δ| of that row, in place. */
export function signQuantizeRows(delta: Float32Array, cols: number): void {
  for (let r = 0; r < delta.length; r += cols) {
    const end = Math.min(delta.length, r + cols);
    let s = 0;
    for (let i = r; i < end; i++) s += Math.abs(delta[i]!);
    const scale = s / (end - r);
    for (let i = r; i < end; i++) {
      const v = delta[i]!;
      delta[i] = v > 0 ? scale : v < 0 ? -scale : 0;
    }
  }
}

/** mergekit's rescaled_masked_tensor with RescaleNorm.l1: the factor that restores ‖δ‖₁. */
export function l1RescaleFactor(before: number, after: number): number {
  const eps = 1e-7;
  return before < eps || after < eps ? 1 : before / after;
}
