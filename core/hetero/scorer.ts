// The evaluation harness's Scorer (benchmarks/eval/scorer.ts: lm-evaluation-harness's
// loglikelihood, loglikelihood_rolling, generate_until over text) for a heterogeneous
// MoE, so `moeforge eval` scores it like any model. core cannot import benchmarks/:
// the class matches the interface structurally (test/hetero-eval.test.ts assigns it to
// Scorer). Text handling follows CausalLMScorer line for line (BOS, lm-eval's
// _encode_pair, rolling windows); what differs is the model call: one request at a
// time through HeteroMoE.logLikelihood, which routes on the context only, so every
// choice of a question is scored by the same mixture and the router never reads the
// answer (a batch forward would route each row on context + continuation).
import { MoeforgeError } from '../errors.js';
import type { LoadOptions } from '../model/causal-lm.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadHeteroRepo } from './load.js';
import type { HeteroMoE } from './model.js';
import { chatPrompt, encodeContext, encodePair } from '../tokenizer/encode-pair.js';
import { cutAtStop } from '../tokenizer/stop.js';

interface TextRequest {
  context: string;
  continuation: string;
  chat?: boolean;
}

interface GenerateTextRequest {
  context: string;
  chat?: boolean;
  until: string[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

export class HeteroScorer {
  readonly info: { modelType: string; architecture: string; numExperts: number | null; expertsPerToken: number | null };

  constructor(
    readonly model: HeteroMoE,
    readonly tokenizer: Tokenizer,
  ) {
    this.info = { modelType: 'moeforge_hetero', architecture: 'MoeforgeHeteroForCausalLM', numExperts: model.numExperts, expertsPerToken: model.router.topK };
  }

  chatPrompt(userText: string): string {
    return chatPrompt(this.tokenizer, userText);
  }


  /** Σ log p(continuation | context), left-truncated to the context window as lm-eval. */
  private async score(context: number[], continuation: number[]): Promise<{ logprob: number; isGreedy: boolean; tokens: number }> {
    if (continuation.length === 0) return { logprob: 0, isGreedy: true, tokens: 0 };
    const maxLen = this.model.config.maxPositionEmbeddings;
    const all = [...context, ...continuation];
    const keep = all.length - 1 > maxLen ? all.length - 1 - maxLen : 0;
    const r = await this.model.logLikelihood(context.slice(Math.min(keep, context.length - 1)), continuation);
    return { logprob: r.logprob, isGreedy: r.isGreedy, tokens: continuation.length };
  }

  async logLikelihood(requests: TextRequest[], onProgress?: (done: number) => void): Promise<{ logprob: number; isGreedy: boolean; tokens: number }[]> {
    const out: { logprob: number; isGreedy: boolean; tokens: number }[] = [];
    for (const r of requests) {
      const { context, continuation } = encodePair(this.tokenizer, r, this.model.folder);
      out.push(await this.score(context, continuation));
      onProgress?.(out.length);
    }
    return out;
  }

  /** As CausalLMScorer.logLikelihoodRolling: every token predicted, from BOS, in windows of the context size. */
  async logLikelihoodRolling(texts: string[], onProgress?: (done: number) => void): Promise<{ logprob: number; tokens: number }[]> {
    const maxLen = this.model.config.maxPositionEmbeddings;
    const out: { logprob: number; tokens: number }[] = [];
    for (const text of texts) {
      let ids = this.tokenizer.encode(text, { addSpecialTokens: true });
      const bos = this.tokenizer.bosTokenId ?? this.model.config.bosTokenId ?? undefined;
      if (bos !== undefined && ids[0] !== bos) ids = [bos, ...ids];
      let logprob = 0;
      for (let a = 1; a < ids.length; ) {
        const b = Math.min(ids.length, a + maxLen);
        const start = Math.max(0, b - 1 - maxLen);
        logprob += (await this.score(ids.slice(start, a), ids.slice(a, b))).logprob;
        a = b;
      }
      out.push({ logprob, tokens: ids.length - 1 });
    }
    onProgress?.(texts.length);
    return out;
  }

  async generate(requests: GenerateTextRequest[], onProgress?: (done: number) => void): Promise<string[]> {
    const out: string[] = [];
    for (const r of requests) {
      const prompt = encodeContext(this.tokenizer, r.context, r.chat);
      const ids = await this.model.generate(prompt, { maxNewTokens: r.maxNewTokens, temperature: r.temperature, topP: r.topP, seed: r.seed, stopTokens: this.tokenizer.eosTokenIds });
      const text = cutAtStop(this.tokenizer.decode(ids, { skipSpecialTokens: true }), r.until);
      out.push(text);
      onProgress?.(out.length);
    }
    return out;
  }

  /** Routing is per sequence, not per token and layer: the harness's per-layer token counts do not apply. */
  takeRouting(): null {
    return null;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** The scorer of an exported heterogeneous repo (its own tokenizer files), as `moeforge eval` loads a model folder. */
export async function loadHeteroScorer(folder: string, options: LoadOptions = {}): Promise<HeteroScorer> {
  const tokenizer = await Tokenizer.fromFolder(folder);
  const model = await loadHeteroRepo(folder, options);
  if (tokenizer.vocabSize > model.config.vocabSize) {
    model.dispose();
    throw new MoeforgeError('incompatible_models', `the tokenizer has ${tokenizer.vocabSize} tokens, the model's vocab_size is ${model.config.vocabSize}`, { path: folder });
  }
  return new HeteroScorer(model, tokenizer);
}
