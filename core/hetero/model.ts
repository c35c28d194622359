// A training-free heterogeneous MoE (MergeME, arXiv 2502.00997 §3.2; issue 9): every
// expert is a whole dense CausalLM of its own family, width and depth; a sequence-level
// router (router.ts) weights the experts per input row, and the output is the mixture
// of the chosen experts' next-token distributions:
//   log p(v | x_<t) = logsumexp_{e: w_e > 0} ( log w_e + log_softmax(logits_e(x_<t))[v] ).
// `logits` returned by forward() are these mixture log-probabilities (valid logits:
// softmax(log p) = p), which modeling_moeforge_hetero.py returns too.
// It has CausalLM's scoring surface (config, folder, forward, tokenLogprobs,
// logLikelihood, generate, dispose), which is the CausalScorer the evaluation harness
// and the perplexity baseline use (routers/baselines/perplexity-router.ts).
import type { NormalizedConfig } from '../config/types.js';
import { MoeforgeError } from '../errors.js';
import type { CausalLM, GenerateOptions } from '../model/causal-lm.js';
import { argmax, logSoftmax, sampleToken } from '../model/sampling.js';
import { Rng } from '../rng.js';
import { checkRouterSpec, cosine, linearScores, meanLogprob, routeWeights, type SequenceRouterSpec } from './router.js';

export interface HeteroForwardOptions {
  /** [B, T]: 1 = real token, 0 = padding. */
  attentionMask?: number[][];
  /** [B, E]: use these weights instead of routing each row on its own real tokens. */
  routingWeights?: number[][];
}

export interface HeteroForwardResult {
  /** [B, T, V] mixture log-probabilities. */
  logits: Float32Array;
  /** [B, E] the weights each row was mixed with. */
  routingWeights: number[][];
  batch: number;
  seqLen: number;
}

export class HeteroMoE {
  readonly config: NormalizedConfig;
  /** Routing counts per expert (rows routed to it among their top k), for reports. */
  readonly counts: number[];
  private disposed = false;

  constructor(
    readonly experts: CausalLM[],
    readonly names: string[],
    readonly router: SequenceRouterSpec,
    /** The exported repo, or the first expert's folder before export. */
    readonly folder: string,
    /** Called once by dispose() after the experts (closes a shared checkpoint). */
    private readonly onDispose?: () => void,
  ) {
    if (experts.length === 0) throw new MoeforgeError('invalid_argument', 'a heterogeneous MoE needs at least one expert', { path: 'experts' });
    checkRouterSpec(router, experts.length, 'router');
    const vocab = experts[0]!.config.vocabSize;
    experts.forEach((m, i) => {
      if (m.config.vocabSize !== vocab) {
        throw new MoeforgeError('incompatible_models', `vocab_size ${m.config.vocabSize} differs from ${names[0]}'s ${vocab}; next-token distributions over different vocabularies cannot be mixed`, {
          path: names[i],
        });
      }
      if (router.centroids && router.centroids[i]!.length !== m.config.hiddenSize) {
        throw new MoeforgeError('shape_mismatch', `centroid has ${router.centroids[i]!.length} values, the expert's hidden_size is ${m.config.hiddenSize}`, { path: `router.centroids.${i}` });
      }
    });
    const features = router.kind === 'learned' ? experts.reduce((s, m) => s + m.config.hiddenSize, 0) : router.kind === 'embedding' ? (router.sharedEmbed?.dim ?? 0) : 0;
    if (router.kind === 'embedding' && router.sharedEmbed?.data.length !== vocab * features) {
      throw new MoeforgeError('shape_mismatch', `embedding routing needs the shared embedding [${vocab}, D]`, { path: 'shared.embed_tokens.weight' });
    }
    if (features > 0 && router.weight!.length !== experts.length * features) {
      throw new MoeforgeError('shape_mismatch', `router weight has ${router.weight!.length} values, expected [${experts.length}, ${features}]`, { path: 'router.gate.weight' });
    }
    // The model's limits are the tightest of its experts'.
    this.config = { ...experts[0]!.config, maxPositionEmbeddings: Math.min(...experts.map((m) => m.config.maxPositionEmbeddings)) };
    this.counts = experts.map(() => 0);
  }

  get numExperts(): number {
    return this.experts.length;
  }

  /** One score per expert for one sequence of real tokens (router.ts explains each kind). */
  async scores(ids: number[]): Promise<number[]> {
    if (this.router.kind === 'uniform') return this.experts.map(() => 0);
    if (this.router.kind === 'embedding') return linearScores(this.router.weight!, meanEmbedding(this.router.sharedEmbed!, ids));
    if (this.router.kind === 'learned') return linearScores(this.router.weight!, await learnedFeatures(this.experts, ids));
    if (ids.length < 2) return this.experts.map(() => 0);
    const out: number[] = [];
    for (const [e, m] of this.experts.entries()) {
      if (this.router.kind === 'perplexity') {
        out.push(meanLogprob(await m.tokenLogprobs(ids)));
      } else {
        out.push(cosine(await meanFinalHidden(m, ids), this.router.centroids![e]!));
      }
    }
    return out;
  }

  /** Dense routing weights [E] for one sequence of real tokens. */
  async route(ids: number[]): Promise<number[]> {
    return routeWeights(await this.scores(ids), this.router.topK, this.router.temperature);
  }

  private check(inputIds: number[][]): void {
    if (this.disposed) throw new Error('HeteroMoE used after dispose()');
    if (inputIds.length === 0 || (inputIds[0]?.length ?? 0) === 0) {
      throw new MoeforgeError('invalid_argument', 'input_ids is empty', { path: 'input_ids' });
    }
  }

  /** Mixture log-probs for every position; each row routed on its real tokens unless weights are given. */
  async forward(inputIds: number[][], options: HeteroForwardOptions = {}): Promise<HeteroForwardResult> {
    this.check(inputIds);
    const batch = inputIds.length;
    const seqLen = inputIds[0]!.length;
    const mask = options.attentionMask;
    let weights = options.routingWeights;
    if (weights && (weights.length !== batch || weights.some((w) => w.length !== this.numExperts))) {
      throw new MoeforgeError('invalid_argument', `routing weights must be [${batch}, ${this.numExperts}]`, { path: 'routing_weights' });
    }
    if (!weights) {
      weights = [];
      for (const [b, row] of inputIds.entries()) weights.push(await this.route(mask ? row.filter((_, t) => mask[b]![t]) : row));
    }
    const v = this.config.vocabSize;
    const rows = batch * seqLen;
    const terms: { e: number; logp: Float64Array[] }[] = [];
    for (let e = 0; e < this.numExperts; e++) {
      if (!weights.some((w) => w[e]! > 0)) continue; // no row uses this expert: skip its forward
      const f = await this.experts[e]!.forward(inputIds, mask ? { attentionMask: mask } : {});
      const logp: Float64Array[] = [];
      for (let r = 0; r < rows; r++) logp.push(logSoftmax(f.logits.subarray(r * v, (r + 1) * v)));
      terms.push({ e, logp });
    }
    // Per position and token: logsumexp over the chosen experts, in float64.
    const out = new Float32Array(rows * v);
    for (let r = 0; r < rows; r++) {
      const w = weights[Math.floor(r / seqLen)]!;
      const used = terms.filter((t) => w[t.e]! > 0);
      for (let i = 0; i < v; i++) {
        let m = -Infinity;
        for (const t of used) m = Math.max(m, Math.log(w[t.e]!) + t.logp[r]![i]!);
        let s = 0;
        for (const t of used) s += Math.exp(Math.log(w[t.e]!) + t.logp[r]![i]! - m);
        out[r * v + i] = m + Math.log(s);
      }
    }
    return { logits: out, routingWeights: weights, batch, seqLen };
  }

  /** log P(ids[t] | ids[<t]) for t = 1..n-1 under the mixture routed on the whole of ids. */
  async tokenLogprobs(ids: number[]): Promise<number[]> {
    return (await this.routedTokenLogprobs(ids)).logprobs;
  }

  /** tokenLogprobs and the routing weights [E] the whole of ids was mixed with (`moeforge score` reports both). */
  async routedTokenLogprobs(ids: number[]): Promise<{ logprobs: number[]; weights: number[] }> {
    const { logits, routingWeights } = await this.forward([ids]);
    const v = this.config.vocabSize;
    const logprobs: number[] = [];
    for (let t = 1; t < ids.length; t++) logprobs.push(logits[(t - 1) * v + ids[t]!]!);
    return { logprobs, weights: routingWeights[0]! };
  }

  /**
   * log P(continuation | context) as CausalLM.logLikelihood, routed on the context only
   * (so every choice of a question is scored by the same mixture and the router cannot
   * read the answer; a 1-token context routes on the whole sequence, as the perplexity
   * baseline does).
   */
  async logLikelihood(context: number[], continuation: number[]): Promise<{ logprob: number; isGreedy: boolean; tokenLogprobs: number[] }> {
    if (context.length === 0) {
      throw new MoeforgeError('invalid_argument', 'the context is empty: the first continuation token would have no prediction (prepend BOS)', { path: 'context' });
    }
    if (continuation.length === 0) return { logprob: 0, isGreedy: true, tokenLogprobs: [] };
    const all = [...context, ...continuation];
    const w = await this.route(context.length >= 2 ? context : all);
    this.count(w);
    const { logits } = await this.forward([all.slice(0, -1)], { routingWeights: [w] });
    const v = this.config.vocabSize;
    const tokenLogprobs: number[] = [];
    let isGreedy = true;
    continuation.forEach((token, i) => {
      const row = logits.subarray((context.length - 1 + i) * v, (context.length + i) * v);
      tokenLogprobs.push(row[token]!);
      if (argmax(row) !== token) isGreedy = false;
    });
    return { logprob: tokenLogprobs.reduce((a, b) => a + b, 0), isGreedy, tokenLogprobs };
  }

  /**
   * New tokens after the prompt, routed once on the prompt. Each step recomputes the
   * chosen experts over the whole sequence (the experts' KV caches are private to
   * CausalLM; fine for the model sizes this form is for), as the remote code does.
   */
  async generate(prompt: number[], options: GenerateOptions, routingWeights?: number[]): Promise<number[]> {
    this.check([prompt]);
    const rng = new Rng(options.seed ?? 0).derive('generate');
    const stop = new Set(options.stopTokens ?? []);
    // A caller that already routed the prompt (to report it) passes the weights instead of routing twice.
    const w = routingWeights ?? (await this.route(prompt));
    this.count(w);
    const v = this.config.vocabSize;
    const out: number[] = [];
    while (out.length < options.maxNewTokens) {
      const ids = [...prompt, ...out];
      const { logits } = await this.forward([ids], { routingWeights: [w] });
      const token = sampleToken(logits.slice((ids.length - 1) * v, ids.length * v), options, rng);
      out.push(token);
      if (stop.has(token) || options.shouldStop?.(out)) break;
    }
    return out;
  }

  private count(w: number[]): void {
    w.forEach((x, e) => {
      if (x > 0) this.counts[e]!++;
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.experts) m.dispose();
    this.onDispose?.();
  }
}

/** Mean over the rows of a row-major [T, d] matrix, in float64 then rounded to float32. */
export function meanRows(x: Float32Array, rows: number): Float32Array {
  const d = x.length / rows;
  const acc = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let i = 0; i < d; i++) acc[i]! += x[r * d + i]!;
  return Float32Array.from(acc, (s) => s / rows);
}

/** An expert's mean final hidden state (after its final norm: the last hiddenStates entry) over a sequence. */
export async function meanFinalHidden(model: CausalLM, ids: number[]): Promise<Float32Array> {
  const f = await model.forward([ids], { outputHiddenStates: true });
  return meanRows(f.hiddenStates![f.hiddenStates!.length - 1]!, ids.length);
}

/** The learned router's features: every expert's mean final hidden state, concatenated in expert order. */
export async function learnedFeatures(experts: CausalLM[], ids: number[]): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (const m of experts) parts.push(await meanFinalHidden(m, ids));
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The embedding router's feature: the mean of the shared embedding rows [V, dim] of the sequence's tokens. */
export function meanEmbedding(embed: { data: Float32Array; dim: number }, ids: number[]): Float32Array {
  const acc = new Float64Array(embed.dim);
  for (const id of ids) for (let i = 0; i < embed.dim; i++) acc[i]! += embed.data[id * embed.dim + i]!;
  return Float32Array.from(acc, (s) => s / ids.length);
}
