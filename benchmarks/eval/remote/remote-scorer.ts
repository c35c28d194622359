// The harness's Scorer over an OpenAI-compatible Completions server, as
// lm-evaluation-harness's `local-completions` model scores (lm_eval/models/
// openai_completions.py, api_models.py):
// - log-likelihood: the whole context + continuation as token ids, `echo: true`,
//   `logprobs: 1`, `max_tokens: 0`, temperature 0; the sum of the echoed
//   `token_logprobs` over the continuation; greedy when each continuation token's
//   logprob equals the best of its `top_logprobs`;
// - generation: ordinary completions with the suite's stop sequences.
// Contexts and continuations are tokenised locally with the model's own tokenizer,
// exactly as CausalLMScorer does (lm-eval's _encode_pair), and sent as token ids,
// so both scorers see the same tokens and the boundary between them is exact.
import { MoeforgeError } from '../../../core/errors.js';
import type { Tokenizer } from '../../../core/tokenizer/tokenizer.js';
import type { GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, RollingResult, Scorer, ScorerInfo } from '../scorer.js';
import type { OpenAiClient } from './client.js';
import { chatPrompt, encodeContext, encodePair } from '../../../core/tokenizer/encode-pair.js';
import { cutAtStop } from '../../../core/tokenizer/stop.js';

export interface RemoteScorerOptions {
  /** The served model's name, sent as `model`. */
  model: string;
  /** Prompts per /completions request (default 16). */
  batchSize?: number;
  /** The model's context (max_position_embeddings) when known: longer inputs are cut on the left, as lm-eval does. */
  maxLength?: number;
  info?: Partial<ScorerInfo>;
}

interface TokenRequest {
  context: number[];
  continuation: number[];
}

interface LegacyLogprobs {
  token_logprobs?: unknown;
  top_logprobs?: unknown;
}

interface Choice {
  index?: number;
  text?: unknown;
  logprobs?: LegacyLogprobs | null;
}

export class RemoteScorer implements Scorer {
  readonly info: ScorerInfo;
  readonly model: string;
  private readonly batchSize: number;
  private readonly maxLength: number | undefined;
  /** Servers that refuse `max_tokens: 0` get 1 (lm-eval's own setting); the extra token is ignored. */
  private scoringMaxTokens = 0;

  constructor(
    readonly client: OpenAiClient,
    readonly tokenizer: Tokenizer,
    options: RemoteScorerOptions,
  ) {
    this.model = options.model;
    this.batchSize = Math.max(1, options.batchSize ?? 16);
    this.maxLength = options.maxLength;
    this.info = { modelType: 'remote', architecture: 'remote', numExperts: null, expertsPerToken: null, ...options.info };
  }

  chatPrompt(userText: string): string {
    return chatPrompt(this.tokenizer, userText);
  }


  private noPromptLogprobs(why: string): MoeforgeError {
    return new MoeforgeError(
      'remote_error',
      `the server returned no prompt logprobs (${why}): it cannot score log-likelihoods; use a server that honours echo + logprobs (vLLM, moeforge serve)`,
      { path: `${this.client.baseUrl}/completions` },
    );
  }

  /** One /completions request for up to batchSize token prompts; returns the echoed logprobs per prompt. */
  private async echoLogprobs(prompts: number[][]): Promise<Choice[]> {
    const body = (maxTokens: number) => ({ model: this.model, prompt: prompts, max_tokens: maxTokens, echo: true, logprobs: 1, temperature: 0 });
    let answer: Record<string, unknown>;
    try {
      answer = await this.client.post('/completions', body(this.scoringMaxTokens));
    } catch (e) {
      if (this.scoringMaxTokens === 0 && e instanceof MoeforgeError && / 400: .*max_tokens/i.test(e.message)) {
        this.scoringMaxTokens = 1;
        answer = await this.client.post('/completions', body(1));
      } else throw e;
    }
    const choices = answer.choices;
    if (!Array.isArray(choices) || choices.length !== prompts.length) {
      throw new MoeforgeError('remote_error', `expected ${prompts.length} choices, got ${Array.isArray(choices) ? choices.length : 'none'}`, {
        path: `${this.client.baseUrl}/completions`,
      });
    }
    // Choices may come in any order: `index` says which prompt each answers.
    return [...(choices as Choice[])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
  }

  private parse(choice: Choice, r: TokenRequest): LoglikelihoodResult {
    const lp = choice.logprobs;
    if (!lp || typeof lp !== 'object') throw this.noPromptLogprobs('no logprobs object');
    const tokenLogprobs = lp.token_logprobs;
    const top = lp.top_logprobs;
    const ctx = r.context.length;
    const end = ctx + r.continuation.length;
    if (!Array.isArray(tokenLogprobs) || tokenLogprobs.length < end) {
      throw this.noPromptLogprobs(`token_logprobs has ${Array.isArray(tokenLogprobs) ? tokenLogprobs.length : 'no'} entries for a ${end}-token prompt`);
    }
    let logprob = 0;
    let isGreedy = true;
    for (let i = ctx; i < end; i++) {
      const v = tokenLogprobs[i];
      if (typeof v !== 'number') throw this.noPromptLogprobs(`token_logprobs[${i}] is ${JSON.stringify(v)}`);
      logprob += v;
      // lm-eval: greedy when the token's logprob is the best of the alternatives.
      const alts = Array.isArray(top) ? (top[i] as Record<string, number> | null | undefined) : undefined;
      if (!alts || typeof alts !== 'object' || Object.values(alts).some((a) => a > v)) isGreedy = false;
    }
    return { logprob, isGreedy, tokens: r.continuation.length };
  }

  async scoreTokens(requests: TokenRequest[], onProgress?: (done: number) => void): Promise<LoglikelihoodResult[]> {
    const results = new Array<LoglikelihoodResult>(requests.length);
    const prepared = requests.map((r, index) => {
      let all = [...r.context, ...r.continuation];
      // Left truncation to the model's context (the server must hold the whole prompt).
      if (this.maxLength !== undefined && all.length > this.maxLength) all = all.slice(all.length - this.maxLength);
      const continuation = r.continuation.slice(-Math.min(r.continuation.length, all.length - 1));
      return { index, all, req: { context: all.slice(0, all.length - continuation.length), continuation } };
    });
    const scored = prepared.filter((p) => {
      if (p.req.continuation.length > 0) return true;
      results[p.index] = { logprob: 0, isGreedy: true, tokens: 0 };
      return false;
    });
    let done = requests.length - scored.length;
    const batches: (typeof scored)[] = [];
    for (let i = 0; i < scored.length; i += this.batchSize) batches.push(scored.slice(i, i + this.batchSize));
    await Promise.all(
      batches.map(async (batch) => {
        const choices = await this.echoLogprobs(batch.map((p) => p.all));
        batch.forEach((p, k) => (results[p.index] = this.parse(choices[k]!, p.req)));
        done += batch.length;
        onProgress?.(done);
      }),
    );
    return results;
  }

  async logLikelihood(requests: LoglikelihoodRequest[], onProgress?: (done: number) => void): Promise<LoglikelihoodResult[]> {
    return this.scoreTokens(requests.map((r) => encodePair(this.tokenizer, r, this.tokenizer.folder)), onProgress);
  }

  async logLikelihoodRolling(texts: string[], onProgress?: (done: number) => void): Promise<RollingResult[]> {
    // As CausalLMScorer: every token after BOS is predicted, in windows of the model's context.
    const maxLen = this.maxLength ?? Infinity;
    const windows: { text: number; req: TokenRequest }[] = [];
    const counts: number[] = [];
    texts.forEach((text, ti) => {
      let ids = this.tokenizer.encode(text, { addSpecialTokens: true });
      const bos = this.tokenizer.bosTokenId;
      if (bos !== undefined && ids[0] !== bos) ids = [bos, ...ids];
      counts.push(ids.length - 1);
      for (let a = 1; a < ids.length; ) {
        const b = Math.min(ids.length, a + maxLen);
        const start = Math.max(0, b - 1 - maxLen);
        windows.push({ text: ti, req: { context: ids.slice(start, a), continuation: ids.slice(a, b) } });
        a = b;
      }
    });
    const scored = await this.scoreTokens(windows.map((w) => w.req));
    const out: RollingResult[] = texts.map((_, i) => ({ logprob: 0, tokens: counts[i]! }));
    windows.forEach((w, i) => (out[w.text]!.logprob += scored[i]!.logprob));
    onProgress?.(texts.length);
    return out;
  }

  async generate(requests: GenerateRequest[], onProgress?: (done: number) => void): Promise<string[]> {
    let done = 0;
    return Promise.all(
      requests.map(async (r) => {
        const answer = await this.client.post('/completions', {
          model: this.model,
          prompt: encodeContext(this.tokenizer, r.context, r.chat),
          max_tokens: r.maxNewTokens,
          temperature: r.temperature,
          top_p: r.topP,
          seed: r.seed,
          ...(r.until.length > 0 ? { stop: r.until } : {}),
        });
        const choice = Array.isArray(answer.choices) ? (answer.choices[0] as Choice | undefined) : undefined;
        if (typeof choice?.text !== 'string') {
          throw new MoeforgeError('remote_error', 'the answer has no choices[0].text', { path: `${this.client.baseUrl}/completions` });
        }
        // generate_until: cut at the first stop string (servers that ignore `stop` included).
        const text = cutAtStop(choice.text, r.until);
        onProgress?.(++done);
        return text;
      }),
    );
  }

  takeRouting(): null {
    // A remote server does not report its routing.
    return null;
  }

  dispose(): void {
    // Nothing held: requests finish or fail on their own.
  }
}
