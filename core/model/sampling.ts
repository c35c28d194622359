// Choosing the next token from logits: greedy (argmax, lowest id on ties, as
// torch.argmax) or seeded sampling with temperature and nucleus (top-p)
// filtering, as transformers' TemperatureLogitsWarper + TopPLogitsWarper.
import type { Rng } from '../rng.js';

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** log-softmax in float64 (for scoring: log-probabilities summed over many tokens). */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

export interface SamplingOptions {
  /** 0 or undefined: greedy. */
  temperature?: number;
  /** Keep the smallest set of tokens whose probability reaches topP (1 = all). */
  topP?: number;
}

export function sampleToken(logits: Float32Array, options: SamplingOptions, rng: Rng): number {
  const temperature = options.temperature ?? 0;
  if (temperature <= 0) return argmax(logits);
  const scaled = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) scaled[i] = logits[i]! / temperature;
  const logp = logSoftmax(scaled);
  const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logp[b]! - logp[a]! || a - b);
  const topP = options.topP ?? 1;
  const kept: number[] = [];
  let mass = 0;
  for (const id of order) {
    kept.push(id);
    mass += Math.exp(logp[id]!);
    if (mass >= topP) break;
  }
  let u = rng.next() * mass;
  for (const id of kept) {
    u -= Math.exp(logp[id]!);
    if (u <= 0) return id;
  }
  return kept[kept.length - 1]!;
}
