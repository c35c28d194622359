// Cross-model logits alignment for Sens-Merging's cross-task scaling (arXiv 2502.12420,
// §3.3): how closely model i's next-token logits follow model j's on j's own data. Our
// concrete measure: the cosine similarity of the two logit rows after removing each row's
// mean (logits are defined up to a shift), averaged over every token of j's samples.
import { MoeforgeError } from '../../core/errors.js';

/** Mean centred cosine similarity of two [T, V] logit arrays, row by row. */
export function logitsAlignment(a: Float32Array, b: Float32Array, vocab: number): number {
  if (a.length !== b.length || a.length % vocab !== 0) {
    throw new MoeforgeError('shape_mismatch', `logits of ${a.length} and ${b.length} values do not align (vocab ${vocab})`);
  }
  const rows = a.length / vocab;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    let ma = 0;
    let mb = 0;
    for (let k = 0; k < vocab; k++) {
      ma += a[o + k]!;
      mb += b[o + k]!;
    }
    ma /= vocab;
    mb /= vocab;
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < vocab; k++) {
      const x = a[o + k]! - ma;
      const y = b[o + k]! - mb;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    total += aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 1;
  }
  return total / Math.max(1, rows);
}

/** Mean alignment over the rows of one data set: logits of model i and of the data's own model j. */
export function dataAlignment(mine: Float32Array[], theirs: Float32Array[], vocab: number): number {
  let s = 0;
  mine.forEach((m, k) => (s += logitsAlignment(m, theirs[k]!, vocab)));
  return s / Math.max(1, mine.length);
}
