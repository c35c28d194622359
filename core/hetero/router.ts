// The sequence-level router of a training-free heterogeneous MoE (MergeME, arXiv
// 2502.00997 §3.2): each expert scores the whole input sequence, the scores become
// weights as Mixtral turns router logits into weights (softmax over all experts,
// top-k, renormalise the k), and the experts' next-token distributions are mixed
// with them (mix.ts). Scores, one scalar per expert, so experts of different widths
// are compared in a common space:
//   perplexity: mean log p(x_t | x_<t) of the sequence under the expert (MergeME's
//               training-free router; higher = the expert knows this text better);
//   centroid:   cosine between the expert's mean final hidden state on the sequence
//               and the centroid of its own hidden states on its positive prompts
//               (mergekit's `hidden` gate idea, measured in each expert's own space);
//   learned:    W · f, f the concatenation over experts of each expert's mean final
//               hidden state on the sequence (Σ d_e values), W [E, Σ d_e] trained on the
//               experts' data by classification (gate_mode learned, form whole);
//   embedding:  W · mean of the shared token embeddings of the sequence, W [E, D]: the
//               router of the projected form (MergeME §3.2, gate_mode learned, form
//               projected), which has one shared embedding;
//   uniform:    every expert scores 0 (equal weights over the first k).
// For perplexity and centroid, a sequence with fewer than 2 real tokens has no
// prediction: every score is 0.
import { MoeforgeError } from '../errors.js';

export type SequenceRouterKind = 'perplexity' | 'centroid' | 'learned' | 'embedding' | 'uniform';
export const SEQUENCE_ROUTER_KINDS: readonly SequenceRouterKind[] = ['perplexity', 'centroid', 'learned', 'embedding', 'uniform'];

export interface SequenceRouterSpec {
  kind: SequenceRouterKind;
  /** Experts mixed per sequence (k). */
  topK: number;
  /** Scores are divided by it before the softmax. */
  temperature: number;
  /** centroid only: one vector per expert, of that expert's hidden size. */
  centroids?: Float32Array[];
  /** learned and embedding: the router weight [E, features] row-major. */
  weight?: Float32Array;
  /** embedding only: the shared token embedding [V, dim] whose mean over the sequence the router reads. */
  sharedEmbed?: { data: Float32Array; dim: number };
}

export function checkRouterSpec(spec: SequenceRouterSpec, numExperts: number, label: string): void {
  if (!SEQUENCE_ROUTER_KINDS.includes(spec.kind)) {
    throw new MoeforgeError('invalid_parameter', `router "${spec.kind}" is not one of ${SEQUENCE_ROUTER_KINDS.join(', ')}`, { path: label });
  }
  if (!Number.isInteger(spec.topK) || spec.topK < 1 || spec.topK > numExperts) {
    throw new MoeforgeError('invalid_parameter', `experts per sequence must be a whole number in 1..${numExperts}, got ${spec.topK}`, { path: label });
  }
  if (!(spec.temperature > 0) || !Number.isFinite(spec.temperature)) {
    throw new MoeforgeError('invalid_parameter', `router temperature must be a positive number, got ${spec.temperature}`, { path: label });
  }
  if ((spec.kind === 'learned' || spec.kind === 'embedding') && (!spec.weight || spec.weight.length === 0 || spec.weight.length % numExperts !== 0)) {
    throw new MoeforgeError('invalid_parameter', `${spec.kind} routing needs a router weight of ${numExperts} rows, got ${spec.weight?.length ?? 0} values`, { path: label });
  }
  if (spec.kind === 'centroid' && spec.centroids?.length !== numExperts) {
    throw new MoeforgeError('invalid_parameter', `centroid routing needs one centroid per expert (${numExperts}), got ${spec.centroids?.length ?? 0}`, { path: label });
  }
}

/**
 * Dense weights [E] from scores [E]: softmax(scores / T) in float64, keep the top k
 * (ties to the lower index, as torch.topk on CPU), renormalise them to sum to 1,
 * zero elsewhere. modeling_moeforge_hetero.py `route_weights` does the same.
 */
export function routeWeights(scores: number[], topK: number, temperature: number): number[] {
  const s = scores.map((x) => x / temperature);
  const max = Math.max(...s);
  const p = s.map((x) => Math.exp(x - max));
  const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
  const kept = order.slice(0, topK);
  const sum = kept.reduce((a, i) => a + p[i]!, 0);
  const w = new Array<number>(scores.length).fill(0);
  for (const i of kept) w[i] = p[i]! / sum;
  return w;
}

/** Mean log-probability of ids[1..] given per-token log-probs (the perplexity score). */
export function meanLogprob(tokenLogprobs: number[]): number {
  return tokenLogprobs.length === 0 ? 0 : tokenLogprobs.reduce((a, b) => a + b, 0) / tokenLogprobs.length;
}

/** cos(a, b) in float64; 0 when either is the zero vector. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** scores [E] = W · f for a router weight W [E, f.length] row-major, in float64. */
export function linearScores(weight: Float32Array, features: Float32Array): number[] {
  const dim = features.length;
  const rows = weight.length / dim;
  const out: number[] = [];
  for (let e = 0; e < rows; e++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += weight[e * dim + i]! * features[i]!;
    out.push(s);
  }
  return out;
}
