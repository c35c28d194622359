// Metrics and their aggregation, as lm-evaluation-harness computes them
// (lm_eval/api/metrics.py): acc = argmax of the summed log-likelihoods, acc_norm =
// argmax of log-likelihood / choice length in characters; exact_match as HF
// `evaluate`'s exact_match (regexes_to_ignore, ignore_case, ignore_punctuation);
// the regex filter as lm_eval/filters/extraction.py RegexFilter (first match, group
// 1 when the pattern has groups, "[invalid]" when nothing matches); mean with
// stderr = sample std (n-1) / sqrt(n); perplexities weighted by tokens or bytes.
import { Rng } from '../../core/rng.js';

/** np.argmax: the first index of the maximum. */
export function argmaxFirst(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The chosen index without and with length normalisation (lm-eval's process_results for multiple_choice). */
export function pickChoice(logLikelihoods: readonly number[], choices: readonly string[]): { acc: number; accNorm: number } {
  const norm = logLikelihoods.map((ll, i) => ll / Math.max(1, [...choices[i]!].length));
  return { acc: argmaxFirst(logLikelihoods), accNorm: argmaxFirst(norm) };
}

/** Python's `re` inline flags at the start of a pattern (`(?s)`, `(?i)`) as JS flags. */
export function pyRegex(pattern: string, extraFlags = ''): RegExp {
  let flags = extraFlags;
  const m = pattern.match(/^\(\?([aiLmsux]+)\)/);
  if (m) {
    for (const f of m[1]!) if ('ims'.includes(f) && !flags.includes(f)) flags += f;
    pattern = pattern.slice(m[0].length);
  }
  return new RegExp(pattern, flags);
}

export const INVALID = '[invalid]';

/** RegexFilter with group_select 0: the first match; with groups, its first non-empty group. */
export function extractAnswer(text: string, regex: string | null): string {
  if (regex === null) return text;
  const re = pyRegex(regex, 'g');
  const m = re.exec(text);
  if (!m) return INVALID;
  // findall returns the group when there is one, the tuple of groups when several
  // (RegexFilter then keeps the first non-empty), the whole match when none.
  const value = m.length === 1 ? m[0] : m.length === 2 ? (m[1] ?? '') : (m.slice(1).find((g) => g) ?? '');
  return value.trim();
}

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g; // Python's string.punctuation

export interface ExactMatchOptions {
  ignoreCase: boolean;
  ignorePunctuation: boolean;
  regexesToIgnore: string[];
}

export function normalizeForMatch(text: string, o: ExactMatchOptions): string {
  let s = text;
  for (const r of o.regexesToIgnore) s = s.replace(pyRegex(r, 'g'), '');
  if (o.ignoreCase) s = s.toLowerCase();
  if (o.ignorePunctuation) s = s.replace(PUNCTUATION, '');
  return s;
}

export function exactMatch(prediction: string, reference: string, o: ExactMatchOptions): number {
  return normalizeForMatch(prediction, o) === normalizeForMatch(reference, o) ? 1 : 0;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** lm-eval's sample_stddev: sqrt(Σ(x-μ)² / (n-1)). */
export function sampleStddev(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const mu = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1));
}

/** lm-eval's mean_stderr: sample_stddev / sqrt(n) (null for fewer than 2 samples). */
export function meanStderr(xs: readonly number[]): number | null {
  return xs.length < 2 ? null : sampleStddev(xs) / Math.sqrt(xs.length);
}

/** Per-document log-likelihood and its weight (tokens, bytes) for weighted perplexities. */
export interface Weighted {
  logprob: number;
  weight: number;
}

/** exp(-Σ ll / Σ weight) (lm-eval's weighted_perplexity). */
export function weightedPerplexity(items: readonly Weighted[]): number {
  const ll = items.reduce((a, x) => a + x.logprob, 0);
  const w = items.reduce((a, x) => a + x.weight, 0);
  return Math.exp(-ll / w);
}

/** -Σ ll / Σ bytes / ln 2 (lm-eval's bits_per_byte). */
export function bitsPerByte(items: readonly Weighted[]): number {
  const ll = items.reduce((a, x) => a + x.logprob, 0);
  const w = items.reduce((a, x) => a + x.weight, 0);
  return -ll / w / Math.LN2;
}

/**
 * Bootstrap stderr (lm-eval's bootstrap_stderr: resample documents with
 * replacement, the sample std of the statistic over resamples), seeded so a run
 * repeats exactly. lm-eval leaves weighted perplexities without a stderr; a
 * resampled one is more useful than none.
 */
export function bootstrapStderr(items: readonly Weighted[], statistic: (xs: readonly Weighted[]) => number, seed: number, iterations = 1000): number | null {
  if (items.length < 2) return null;
  const rng = new Rng(seed).derive('bootstrap');
  const values: number[] = [];
  const sample: Weighted[] = new Array<Weighted>(items.length);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < items.length; i++) sample[i] = items[rng.int(items.length)]!;
    values.push(statistic(sample));
  }
  return sampleStddev(values);
}
