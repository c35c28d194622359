// Exact rank selection on |x| in linear time, streamed over chunks: a two-pass radix
// select on the float32 bit pattern (for non-negative floats the bit pattern orders
// like the value). Pass A histograms the high 16 bits, pass B the low 16 bits inside
// the one high bucket that holds the wanted rank. No sort, no copy of the tensor:
// 2 × 65536 counters per boundary.
//
// A boundary at ascending position r splits the elements into "below" (the r
// smallest |x|) and the rest. Equal magnitudes at the boundary are split in index
// order (torch's argsort leaves that order unspecified; index order is deterministic).

export interface RankBoundary {
  /** Ascending position r in [0, n]. */
  rank: number;
  /** |x| bit pattern at position r (0xffffffff when r = n: everything is below). */
  bits: number;
  /** Elements with |x| strictly smaller. */
  countLess: number;
}

const HI = 65536;

export class RadixSelector {
  private readonly hiHist: Float64Array = new Float64Array(HI);
  private readonly loHists: Float64Array[];
  private readonly hiBucket: number[];
  private readonly lessBeforeBucket: number[];

  constructor(
    private readonly n: number,
    private readonly ranks: number[],
  ) {
    this.loHists = ranks.map(() => new Float64Array(HI));
    this.hiBucket = ranks.map(() => -1);
    this.lessBeforeBucket = ranks.map(() => 0);
  }

  /** Pass A: feed every chunk of |x| bits. */
  addHigh(values: Float32Array): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const h = this.hiHist;
    for (let i = 0; i < bits.length; i++) h[(bits[i]! & 0x7fffffff) >>> 16]!++;
  }

  /** Between the passes: find the high bucket of every boundary. */
  finishHigh(): void {
    this.ranks.forEach((rank, j) => {
      if (rank >= this.n) return;
      let cum = 0;
      for (let b = 0; b < HI; b++) {
        const c = this.hiHist[b]!;
        if (cum + c > rank) {
          this.hiBucket[j] = b;
          this.lessBeforeBucket[j] = cum;
          return;
        }
        cum += c;
      }
    });
  }

  /** Pass B: feed every chunk again. */
  addLow(values: Float32Array): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let j = 0; j < this.ranks.length; j++) {
      const bucket = this.hiBucket[j]!;
      if (bucket < 0) continue;
      const h = this.loHists[j]!;
      for (let i = 0; i < bits.length; i++) {
        const a = bits[i]! & 0x7fffffff;
        if (a >>> 16 === bucket) h[a & 0xffff]!++;
      }
    }
  }

  boundaries(): RankBoundary[] {
    return this.ranks.map((rank, j) => {
      if (rank >= this.n) return { rank, bits: 0xffffffff, countLess: this.n };
      const bucket = this.hiBucket[j]!;
      let cum = this.lessBeforeBucket[j]!;
      const h = this.loHists[j]!;
      for (let b = 0; b < HI; b++) {
        const c = h[b]!;
        if (cum + c > rank) return { rank, bits: ((bucket << 16) | b) >>> 0, countLess: cum };
        cum += c;
      }
      throw new Error('radix select: rank beyond the counted elements (chunks changed between passes)');
    });
  }
}

/**
 * Streams "is element i below the boundary" in index order: call `reset()` before
 * each pass over the tensor, then `below(bits)` once per element in order.
 */
export class BoundaryCursor {
  /** Elements equal to the boundary value seen so far in this pass. */
  seen = 0;
  private readonly eqBelow: number;
  constructor(readonly boundary: RankBoundary) {
    this.eqBelow = boundary.rank - boundary.countLess;
  }
  reset(): void {
    this.seen = 0;
  }
  below(absBits: number): boolean {
    const t = this.boundary.bits;
    if (absBits < t) return true;
    if (absBits > t) return false;
    return this.seen++ < this.eqBelow;
  }
}
