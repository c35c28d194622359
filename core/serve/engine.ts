// The engine behind `moeforge serve`: one model (ServeModel: a CausalLM or a
// heterogeneous MoE) + its Tokenizer, and one queue.
// The forward engine is single-threaded and stateful per call (KV cache), so every
// job runs alone, in arrival order; concurrent HTTP requests wait their turn and
// cannot see each other's tokens.
//
// A completion is what vLLM's /v1/completions computes: generation (greedy or
// seeded sampling, stopping at EOS, `max_tokens` or the first stop string, whose
// text is cut off), and with `logprobs` the log-probabilities of the echoed prompt
// tokens (the first has none: null) and of the generated ones, each with its top-N
// alternatives. Both come from one extra forward pass over prompt + output.
import { randomInt } from 'node:crypto';
import type { GenerateOptions } from '../model/causal-lm.js';
import { logSoftmax } from '../model/sampling.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { firstStop } from '../tokenizer/stop.js';

export interface CompletionJob {
  prompt: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number | undefined;
  stop: string[];
  /** Top alternatives per token; undefined = no logprobs. */
  logprobs: number | undefined;
  echo: boolean;
}

export interface TokenLogprob {
  id: number;
  /** null for the first prompt token (nothing predicts it). */
  logprob: number | null;
  top: { id: number; logprob: number }[] | null;
}

export interface CompletionOutput {
  /** Generated ids (EOS dropped, cut after the token that completed a stop string). */
  ids: number[];
  /** Generated text, cut before the first stop string. */
  text: string;
  finishReason: 'stop' | 'length';
  /** Echoed prompt tokens then generated tokens, when logprobs were asked for. */
  logprobs: TokenLogprob[] | undefined;
}

function topK(logp: Float64Array, k: number): { id: number; logprob: number }[] {
  // Partial selection: k is small (≤ 20), the vocabulary large. Equal values keep
  // the lower id first.
  const best: { id: number; logprob: number }[] = [];
  if (k <= 0) return best;
  for (let id = 0; id < logp.length; id++) {
    const entry = { id, logprob: logp[id]! };
    if (best.length === k) {
      if (entry.logprob <= best[k - 1]!.logprob) continue;
      best.pop();
    }
    let i = best.length;
    best.push(entry);
    while (i > 0 && best[i - 1]!.logprob < entry.logprob) {
      best[i] = best[i - 1]!;
      i--;
    }
    best[i] = entry;
  }
  return best;
}

/**
 * What the engine needs of a model: CausalLM, or a heterogeneous MoE (core/hetero/model.ts),
 * whose `logits` are mixture log-probabilities (log_softmax leaves them as they are).
 */
export interface ServeModel {
  readonly config: { maxPositionEmbeddings: number; vocabSize: number };
  generate(prompt: number[], options: GenerateOptions): Promise<number[]>;
  /** logits [B, T, V] for rows of token ids. */
  forward(inputIds: number[][]): Promise<{ logits: Float32Array }>;
}

export class ServeEngine<M extends ServeModel = ServeModel> {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly model: M,
    readonly tokenizer: Tokenizer,
    readonly modelName: string,
  ) {}

  get maxContext(): number {
    return this.model.config.maxPositionEmbeddings;
  }

  /** Runs `job` after every job queued before it (failures do not block the queue). */
  enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => undefined);
    return run;
  }

  complete(job: CompletionJob): Promise<CompletionOutput> {
    return this.enqueue(() => this.run(job));
  }

  private async run(job: CompletionJob): Promise<CompletionOutput> {
    const eos = new Set(this.tokenizer.eosTokenIds);
    let ids: number[] = [];
    let finishReason: 'stop' | 'length' = 'length';
    let text = '';
    if (job.maxTokens > 0) {
      let cutAt = -1;
      ids = await this.model.generate(job.prompt, {
        maxNewTokens: job.maxTokens,
        temperature: job.temperature,
        topP: job.topP,
        // No seed: a fresh one per request, as OpenAI samples.
        seed: job.seed ?? randomInt(0, 2 ** 31),
        stopTokens: this.tokenizer.eosTokenIds,
        shouldStop: job.stop.length === 0 ? undefined : (out) => (cutAt = firstStop(this.tokenizer.decode([...out], { skipSpecialTokens: true }), job.stop)) >= 0,
      });
      if (ids.length > 0 && eos.has(ids[ids.length - 1]!)) {
        ids = ids.slice(0, -1);
        finishReason = 'stop';
      }
      text = this.tokenizer.decode(ids, { skipSpecialTokens: true });
      const at = cutAt >= 0 ? cutAt : firstStop(text, job.stop);
      if (at >= 0) {
        text = text.slice(0, at);
        finishReason = 'stop';
      }
    }
    const logprobs = job.logprobs === undefined ? undefined : await this.logprobs(job.prompt, ids, job.logprobs, job.echo);
    return { ids, text, finishReason, logprobs };
  }

  /** Log-probabilities of prompt tokens 1.. (echo) and of `generated`, from one pass over (prompt + generated)[:-1]. */
  private async logprobs(prompt: number[], generated: number[], k: number, echo: boolean): Promise<TokenLogprob[]> {
    const all = [...prompt, ...generated];
    const out: TokenLogprob[] = [];
    if (echo) out.push({ id: prompt[0]!, logprob: null, top: null });
    if (all.length < 2) return out;
    const { logits } = await this.model.forward([all.slice(0, -1)]);
    const v = this.model.config.vocabSize;
    const first = echo ? 1 : prompt.length;
    for (let t = first; t < all.length; t++) {
      const logp = logSoftmax(logits.subarray((t - 1) * v, t * v));
      out.push({ id: all[t]!, logprob: logp[all[t]!]!, top: k > 0 ? topK(logp, k) : [] });
    }
    return out;
  }
}
