// MergeME's perplexity routing (arXiv 2502.00997, the strongest training-free router it
// reports), as a sequence-level baseline for evaluation: every dense expert scores the
// input, and the whole sequence goes to the expert with the lowest perplexity on it,
// exp(-mean log p(token | tokens before)). It exposes the surface the evaluation
// harness scores a CausalLM through (logLikelihood, generate, config, dispose), so an
// eval puts it next to MoEs and dense merges.
//
// What is routed: the context (the prompt), never the continuation being scored, so
// all choices of a multiple-choice question are scored by one expert and the router
// cannot peek at the answers. A context of a single token (BOS only) has no
// prediction; then the whole sequence decides, as it is all there is to go by.
import { MoeforgeError } from '../../core/errors.js';
import { CausalLM, type GenerateOptions, type LoadOptions } from '../../core/model/causal-lm.js';
import type { NormalizedConfig } from '../../core/config/types.js';

/** What the evaluation harness needs of a model: CausalLM's scoring and generation methods. */
export interface CausalScorer {
  readonly config: NormalizedConfig;
  logLikelihood(context: number[], continuation: number[]): Promise<{ logprob: number; isGreedy: boolean; tokenLogprobs: number[] }>;
  generate(prompt: number[], options: GenerateOptions): Promise<number[]>;
  dispose(): void;
}

export interface RouteDecision {
  /** Index of the chosen expert (lowest perplexity; the lower index on ties). */
  expert: number;
  /** Perplexity of the routed ids under each expert. */
  perplexities: number[];
}

/** exp(-mean log p) over ids[1..], from per-token log-probabilities. */
export function perplexityOf(tokenLogprobs: number[]): number {
  return Math.exp(-tokenLogprobs.reduce((a, b) => a + b, 0) / tokenLogprobs.length);
}

export class PerplexityRouter implements CausalScorer {
  readonly config: NormalizedConfig;
  /** How many sequences each expert received so far (for reports). */
  readonly counts: number[];
  private readonly cache = new Map<string, RouteDecision>();

  private constructor(
    readonly experts: CausalLM[],
    readonly names: string[],
  ) {
    this.config = experts[0]!.config;
    this.counts = experts.map(() => 0);
  }

  /** Routes over already loaded dense experts (they must share one vocabulary). */
  static fromModels(experts: CausalLM[], names: string[] = experts.map((m) => m.folder)): PerplexityRouter {
    if (experts.length === 0) throw new MoeforgeError('invalid_argument', 'perplexity routing needs at least one expert', { path: 'experts' });
    const vocab = experts[0]!.config.vocabSize;
    experts.forEach((m, i) => {
      if (m.config.vocabSize !== vocab) {
        throw new MoeforgeError('incompatible_models', `vocab_size ${m.config.vocabSize} differs from the first expert's ${vocab}; perplexities over different vocabularies cannot be compared`, {
          path: names[i] ?? m.folder,
        });
      }
    });
    return new PerplexityRouter(experts, names);
  }

  static async load(folders: string[], options: LoadOptions = {}): Promise<PerplexityRouter> {
    const models: CausalLM[] = [];
    try {
      for (const f of folders) models.push(await CausalLM.load(f, options));
      return PerplexityRouter.fromModels(models, folders);
    } catch (e) {
      for (const m of models) m.dispose();
      throw e;
    }
  }

  /** The expert with the lowest perplexity on `ids` (at least 2 tokens). */
  async route(ids: number[]): Promise<RouteDecision> {
    if (ids.length < 2) {
      throw new MoeforgeError('invalid_argument', `perplexity routing needs at least 2 tokens, got ${ids.length}`, { path: 'input_ids' });
    }
    const key = ids.join(',');
    const known = this.cache.get(key);
    if (known) return known;
    const perplexities: number[] = [];
    for (const m of this.experts) perplexities.push(perplexityOf(await m.tokenLogprobs(ids)));
    let expert = 0;
    perplexities.forEach((p, i) => {
      if (p < perplexities[expert]!) expert = i;
    });
    const decision = { expert, perplexities };
    this.cache.set(key, decision);
    return decision;
  }

  /** The ids that decide the route for a (context, continuation) pair. */
  private routedIds(context: number[], continuation: number[]): number[] {
    return context.length >= 2 ? context : [...context, ...continuation];
  }

  async logLikelihood(context: number[], continuation: number[]): Promise<{ logprob: number; isGreedy: boolean; tokenLogprobs: number[]; expert: number }> {
    const { expert } = await this.route(this.routedIds(context, continuation));
    this.counts[expert]!++;
    return { ...(await this.experts[expert]!.logLikelihood(context, continuation)), expert };
  }

  async generate(prompt: number[], options: GenerateOptions): Promise<number[]> {
    const { expert } = await this.route(prompt);
    this.counts[expert]!++;
    return this.experts[expert]!.generate(prompt, options);
  }

  dispose(): void {
    for (const m of this.experts) m.dispose();
  }
}

// ---------------------------------------------------------------------------
// The same routing over the evaluation harness's text-level scorer interface
// (benchmarks/eval/scorer.ts `Scorer`: lm-evaluation-harness's loglikelihood,
// loglikelihood_rolling and generate_until). Declared structurally here, as routers/
// imports nothing from benchmarks/: the harness passes one CausalLMScorer per dense
// expert and gets back an object it scores like any other model.

export interface TextScorer {
  readonly info: { modelType: string; architecture: string; numExperts: number | null; expertsPerToken: number | null };
  chatPrompt(userText: string): string;
  logLikelihood(
    requests: { context: string; continuation: string; chat?: boolean }[],
    onProgress?: (done: number) => void,
  ): Promise<{ logprob: number; isGreedy: boolean; tokens: number }[]>;
  logLikelihoodRolling(texts: string[], onProgress?: (done: number) => void): Promise<{ logprob: number; tokens: number }[]>;
  generate(
    requests: { context: string; chat?: boolean; until: string[]; maxNewTokens: number; temperature: number; topP: number; seed: number }[],
    onProgress?: (done: number) => void,
  ): Promise<string[]>;
  takeRouting(): unknown;
  dispose(): void;
}

/**
 * MergeME's perplexity routing as a harness scorer: each request goes whole to the expert
 * with the lowest perplexity on its context (a rolling log-likelihood from BOS); a
 * perplexity task's text is itself the routed sequence. Routing is per context, cached.
 */
export class PerplexityRouterScorer implements TextScorer {
  readonly info: TextScorer['info'];
  /** Requests each expert received so far. */
  readonly counts: number[];
  private readonly cache = new Map<string, RouteDecision>();

  constructor(
    readonly experts: TextScorer[],
    readonly names: string[] = experts.map((_, i) => `expert ${i}`),
  ) {
    if (experts.length === 0) throw new MoeforgeError('invalid_argument', 'perplexity routing needs at least one expert', { path: 'experts' });
    this.info = { modelType: 'perplexity_router', architecture: `PerplexityRouter(${experts.map((e) => e.info.architecture).join(', ')})`, numExperts: experts.length, expertsPerToken: 1 };
    this.counts = experts.map(() => 0);
  }

  /** The expert with the lowest perplexity on `text` (lower index on ties). */
  async routeText(text: string): Promise<RouteDecision> {
    const known = this.cache.get(text);
    if (known) return known;
    const perplexities: number[] = [];
    for (const e of this.experts) {
      const [r] = await e.logLikelihoodRolling([text]);
      perplexities.push(r!.tokens > 0 ? Math.exp(-r!.logprob / r!.tokens) : Infinity);
    }
    let expert = 0;
    perplexities.forEach((p, i) => {
      if (p < perplexities[expert]!) expert = i;
    });
    const d = { expert, perplexities };
    this.cache.set(text, d);
    return d;
  }

  chatPrompt(userText: string): string {
    return this.experts[0]!.chatPrompt(userText);
  }

  /** Runs each expert's share of the requests as one batch, results back in request order. */
  private async dispatch<R, O>(requests: R[], routeOn: (r: R) => string, run: (e: TextScorer, rs: R[]) => Promise<O[]>, onProgress?: (done: number) => void): Promise<O[]> {
    const groups = this.experts.map(() => [] as number[]);
    for (const [i, r] of requests.entries()) {
      const { expert } = await this.routeText(routeOn(r));
      groups[expert]!.push(i);
      this.counts[expert]!++;
    }
    const out = new Array<O>(requests.length);
    let done = 0;
    for (const [e, idx] of groups.entries()) {
      if (idx.length === 0) continue;
      const results = await run(this.experts[e]!, idx.map((i) => requests[i]!));
      idx.forEach((i, k) => (out[i] = results[k]!));
      done += idx.length;
      onProgress?.(done);
    }
    return out;
  }

  logLikelihood(requests: Parameters<TextScorer['logLikelihood']>[0], onProgress?: (done: number) => void): ReturnType<TextScorer['logLikelihood']> {
    // The context decides, never the continuation being scored; an empty context has nothing to go by but the whole text.
    return this.dispatch(requests, (r) => (r.context.trim() ? r.context : r.context + r.continuation), (e, rs) => e.logLikelihood(rs), onProgress);
  }

  logLikelihoodRolling(texts: string[], onProgress?: (done: number) => void): ReturnType<TextScorer['logLikelihoodRolling']> {
    return this.dispatch(texts, (t) => t, (e, ts) => e.logLikelihoodRolling(ts), onProgress);
  }

  generate(requests: Parameters<TextScorer['generate']>[0], onProgress?: (done: number) => void): Promise<string[]> {
    return this.dispatch(requests, (r) => r.context, (e, rs) => e.generate(rs), onProgress);
  }

  /** Token-level routing statistics do not apply: a whole sequence goes to one dense expert (see `counts`). */
  takeRouting(): null {
    for (const e of this.experts) e.takeRouting();
    return null;
  }

  dispose(): void {
    for (const e of this.experts) e.dispose();
  }
}
