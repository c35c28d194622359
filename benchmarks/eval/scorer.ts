// The model adapter the harness talks to: a "scorer" with lm-evaluation-harness's
// three request kinds (lm_eval/api/model.py LM: loglikelihood,
// loglikelihood_rolling, generate_until) over text, so that other kinds of model
// (a remote OpenAI-compatible server, the perplexity-routed ensemble) plug in by
// implementing the same interface. `CausalLMScorer` runs the local forward engine:
// batched, longest first (lm-eval's Collator), right-padded with an attention mask.
import type { CausalLM } from '../../core/model/causal-lm.js';
import { argmax, logSoftmax } from '../../core/model/sampling.js';
import { isSparseLayer } from '../../core/config/types.js';
import { MoeforgeError } from '../../core/errors.js';
import type { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { chatPrompt, encodeContext, encodePair } from '../../core/tokenizer/encode-pair.js';
import { cutAtStop } from '../../core/tokenizer/stop.js';

export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
  /** The context was rendered by the chat template (which writes BOS itself). */
  chat?: boolean;
}

export interface LoglikelihoodResult {
  logprob: number;
  isGreedy: boolean;
  tokens: number;
}

export interface RollingResult {
  logprob: number;
  /** Tokens predicted (every token of the text). */
  tokens: number;
}

export interface GenerateRequest {
  context: string;
  chat?: boolean;
  until: string[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

/** Top-k routing counts per sparse layer, over every real token scored. */
export interface RoutingStats {
  layers: number[];
  numExperts: number;
  expertsPerToken: number;
  /** [layer][expert]: tokens that chose the expert among their top k. */
  counts: number[][];
  tokens: number;
}

export interface ScorerInfo {
  modelType: string;
  architecture: string;
  numExperts: number | null;
  expertsPerToken: number | null;
}

export interface Scorer {
  readonly info: ScorerInfo;
  /** One user turn through the model's chat template, generation prompt added. */
  chatPrompt(userText: string): string;
  logLikelihood(requests: LoglikelihoodRequest[], onProgress?: (done: number) => void): Promise<LoglikelihoodResult[]>;
  logLikelihoodRolling(texts: string[], onProgress?: (done: number) => void): Promise<RollingResult[]>;
  generate(requests: GenerateRequest[], onProgress?: (done: number) => void): Promise<string[]>;
  /** Routing counts since the last call (null for dense models). */
  takeRouting(): RoutingStats | null;
  dispose(): void;
}

interface TokenRequest {
  context: number[];
  continuation: number[];
}

export class CausalLMScorer implements Scorer {
  readonly info: ScorerInfo;
  private routing: RoutingStats | null = null;

  constructor(
    readonly model: CausalLM,
    readonly tokenizer: Tokenizer,
    readonly batchSize = 8,
  ) {
    const c = model.config;
    this.info = {
      modelType: c.modelType,
      architecture: c.architecture,
      numExperts: c.moe?.numExperts ?? null,
      expertsPerToken: c.moe?.expertsPerToken ?? null,
    };
    this.resetRouting();
  }

  private resetRouting(): void {
    const c = this.model.config;
    if (!c.moe) return;
    const layers = Array.from({ length: c.numLayers }, (_, l) => l).filter((l) => isSparseLayer(c, l));
    this.routing = {
      layers,
      numExperts: c.moe.numExperts,
      expertsPerToken: c.moe.expertsPerToken,
      counts: layers.map(() => new Array<number>(c.moe!.numExperts).fill(0)),
      tokens: 0,
    };
  }

  takeRouting(): RoutingStats | null {
    const r = this.routing;
    this.resetRouting();
    return r;
  }

  chatPrompt(userText: string): string {
    return chatPrompt(this.tokenizer, userText);
  }


  /** Σ log p(continuation | context) for token requests, in batches, longest first. */
  async scoreTokens(requests: TokenRequest[], onProgress?: (done: number) => void): Promise<LoglikelihoodResult[]> {
    const maxLen = this.model.config.maxPositionEmbeddings;
    const v = this.model.config.vocabSize;
    const prepared = requests.map((r, index) => {
      if (r.continuation.length > maxLen) {
        throw new MoeforgeError('invalid_data', `a continuation of ${r.continuation.length} tokens is longer than the model's context (max_position_embeddings ${maxLen})`, {
          path: this.model.folder,
        });
      }
      let all = [...r.context, ...r.continuation];
      // Left truncation as lm-eval: keep the last max_length + 1 tokens.
      if (all.length - 1 > maxLen) all = all.slice(all.length - 1 - maxLen);
      return { index, input: all.slice(0, -1), continuation: r.continuation, start: all.length - 1 - r.continuation.length };
    });
    const order = [...prepared].sort((a, b) => b.input.length - a.input.length || a.index - b.index);
    const results: LoglikelihoodResult[] = new Array<LoglikelihoodResult>(requests.length);
    let done = 0;
    for (let i = 0; i < order.length; i += this.batchSize) {
      const batch = order.slice(i, i + this.batchSize);
      const empty = batch.filter((b) => b.continuation.length === 0);
      for (const b of empty) results[b.index] = { logprob: 0, isGreedy: true, tokens: 0 };
      const rows = batch.filter((b) => b.continuation.length > 0);
      if (rows.length > 0) {
        const width = Math.max(...rows.map((b) => b.input.length));
        const padded = rows.some((b) => b.input.length !== width);
        const ids = rows.map((b) => [...b.input, ...new Array<number>(width - b.input.length).fill(0)]);
        const mask = rows.map((b) => b.input.map(() => 1).concat(new Array<number>(width - b.input.length).fill(0)));
        const out = await this.model.forward(ids, { ...(padded ? { attentionMask: mask } : {}), outputRouterLogits: this.routing !== null });
        rows.forEach((b, r) => {
          let logprob = 0;
          let isGreedy = true;
          b.continuation.forEach((token, k) => {
            const pos = b.start + k;
            const row = out.logits.subarray((r * width + pos) * v, (r * width + pos + 1) * v);
            logprob += logSoftmax(row)[token]!;
            if (argmax(row) !== token) isGreedy = false;
          });
          results[b.index] = { logprob, isGreedy, tokens: b.continuation.length };
        });
        if (out.routerLogits) this.countRouting(out.routerLogits, mask, width);
      }
      done += batch.length;
      onProgress?.(done);
    }
    return results;
  }

  private countRouting(routerLogits: Map<number, Float32Array>, mask: number[][], width: number): void {
    const r = this.routing!;
    const e = r.numExperts;
    r.layers.forEach((layer, li) => {
      const logits = routerLogits.get(layer);
      if (!logits) return;
      mask.forEach((row, b) => {
        row.forEach((m, t) => {
          if (!m) return;
          const base = (b * width + t) * e;
          // top-k of the logits = top-k of the softmax (monotone); ties to the lower index as torch.topk.
          const order = Array.from({ length: e }, (_, x) => x).sort((x, y) => logits[base + y]! - logits[base + x]! || x - y);
          for (const x of order.slice(0, r.expertsPerToken)) r.counts[li]![x]!++;
        });
      });
    });
    r.tokens += mask.reduce((a, row) => a + row.reduce((s, m) => s + m, 0), 0);
  }

  async logLikelihood(requests: LoglikelihoodRequest[], onProgress?: (done: number) => void): Promise<LoglikelihoodResult[]> {
    return this.scoreTokens(requests.map((r) => encodePair(this.tokenizer, r, this.model.folder)), onProgress);
  }

  async logLikelihoodRolling(texts: string[], onProgress?: (done: number) => void): Promise<RollingResult[]> {
    // Every token of the text is predicted: from BOS when the tokenizer adds one (or
    // the model has one), as lm-eval's rolling windows start from the prefix token.
    // Texts longer than the context are cut into windows of max_position_embeddings
    // predicted tokens, each conditioned on as much preceding text as fits.
    const maxLen = this.model.config.maxPositionEmbeddings;
    const windows: { text: number; req: TokenRequest }[] = [];
    const tokenCounts: number[] = [];
    texts.forEach((text, ti) => {
      let ids = this.tokenizer.encode(text, { addSpecialTokens: true });
      const bos = this.tokenizer.bosTokenId ?? this.model.config.bosTokenId ?? undefined;
      if (bos !== undefined && ids[0] !== bos) ids = [bos, ...ids];
      const first = 1; // without a BOS the first token has no prediction
      tokenCounts.push(ids.length - first);
      for (let a = first; a < ids.length; ) {
        const b = Math.min(ids.length, a + maxLen);
        const start = Math.max(0, b - 1 - maxLen);
        windows.push({ text: ti, req: { context: ids.slice(start, a), continuation: ids.slice(a, b) } });
        a = b;
      }
    });
    const scored = await this.scoreTokens(windows.map((w) => w.req));
    const out: RollingResult[] = texts.map((_, i) => ({ logprob: 0, tokens: tokenCounts[i]! }));
    windows.forEach((w, i) => (out[w.text]!.logprob += scored[i]!.logprob));
    onProgress?.(texts.length);
    return out;
  }

  /**
   * Stop strings that are one token each (e.g. "\n" for a character tokenizer) also
   * stop the engine early; the text is cut at the first stop string either way, so
   * this only saves the steps whose output would be thrown away.
   */
  private stopTokenIds(until: string[]): number[] {
    const ids: number[] = [];
    for (const s of until) {
      const enc = this.tokenizer.encode(s, { addSpecialTokens: false });
      if (enc.length === 1 && this.tokenizer.decode(enc) === s) ids.push(enc[0]!);
    }
    return ids;
  }

  async generate(requests: GenerateRequest[], onProgress?: (done: number) => void): Promise<string[]> {
    const out: string[] = [];
    for (const r of requests) {
      let prompt = encodeContext(this.tokenizer, r.context, r.chat);
      // Room for the answer, as lm-eval keeps the last max_length - max_gen_toks prompt tokens.
      const maxLen = this.model.config.maxPositionEmbeddings;
      if (prompt.length + r.maxNewTokens > maxLen && maxLen > r.maxNewTokens) prompt = prompt.slice(prompt.length - (maxLen - r.maxNewTokens));
      const opts = { maxNewTokens: r.maxNewTokens, temperature: r.temperature, topP: r.topP, seed: r.seed, stopTokens: [...this.tokenizer.eosTokenIds, ...this.stopTokenIds(r.until)] };
      const ids = await this.model.generate(prompt, opts);
      if (this.routing) {
        // The routing of what the model read and wrote: one pass over prompt + output.
        const all = [...prompt, ...ids].slice(0, this.model.config.maxPositionEmbeddings);
        const f = await this.model.forward([all], { outputRouterLogits: true });
        if (f.routerLogits) this.countRouting(f.routerLogits, [all.map(() => 1)], all.length);
      }
      const text = cutAtStop(this.tokenizer.decode(ids, { skipSpecialTokens: true }), r.until);
      out.push(text);
      onProgress?.(out.length);
    }
    return out;
  }

  dispose(): void {
    this.model.dispose();
  }
}
