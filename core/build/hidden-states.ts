// The prompt vectors gate strategies read (PromptHiddenStates), computed on the base
// model with the forward engine. Tokenisation follows mergekit's `tokenize_prompts`
// (mergekit/moe/router.py): the BOS token, then the prompt without special tokens.
// Prompts run in batches, left-padded with an attention mask (the engine then gives
// each real token the position it has unpadded, so a padded row equals its unpadded
// run); each prompt is computed once and cached, whichever expert lists it.
import type { CausalLM } from '../model/causal-lm.js';
import type { PromptHiddenStates } from '../plugins.js';

export interface GateTokenizer {
  /** Token ids of `text` with no special tokens added. */
  encode(text: string): number[];
  bosTokenId: number | null;
}

interface PromptVectors {
  /** Per layer [d]: the residual stream entering the layer (output_hidden_states[layer]). */
  residualLast: Float32Array[];
  residualMean: Float32Array[];
  /** Per layer [d]: the output of the layer's post_attention_layernorm. */
  routerLast: Float32Array[];
  routerMean: Float32Array[];
}

export interface EngineStatesOptions {
  /** Prompts per forward pass. */
  batchSize?: number;
  /** Reads rows of the base's embedding matrix (cheap_embed without the engine). */
  embeddingRow?: (token: number) => Promise<Float32Array>;
}

export class EngineHiddenStates implements PromptHiddenStates {
  private readonly cache = new Map<string, PromptVectors>();
  private readonly embedCache = new Map<string, Float32Array>();
  /** Forward passes run so far (for reports and tests). */
  forwardPasses = 0;

  constructor(
    private readonly model: CausalLM | undefined,
    private readonly tokenizer: GateTokenizer,
    private readonly hiddenSize: number,
    private readonly options: EngineStatesOptions = {},
  ) {}

  /** mergekit's input ids for one prompt: `(tokenizer.bos_token or "") + prompt`, no special tokens added. */
  tokenize(prompt: string): number[] {
    const ids = this.tokenizer.encode(prompt);
    return this.tokenizer.bosTokenId === null ? ids : [this.tokenizer.bosTokenId, ...ids];
  }

  /** Runs every prompt not yet cached, in batches of similar length. */
  async prepare(prompts: string[]): Promise<void> {
    const model = this.model;
    if (!model) throw new Error('EngineHiddenStates: hidden states need a model');
    const todo = [...new Set(prompts)].filter((p) => !this.cache.has(p)).map((p) => ({ p, ids: this.tokenize(p) }));
    todo.sort((a, b) => a.ids.length - b.ids.length);
    const batchSize = this.options.batchSize ?? 8;
    const d = this.hiddenSize;
    for (let i = 0; i < todo.length; i += batchSize) {
      const batch = todo.slice(i, i + batchSize);
      const T = Math.max(...batch.map((x) => x.ids.length));
      const ids = batch.map((x) => [...new Array<number>(T - x.ids.length).fill(0), ...x.ids]);
      const mask = batch.map((x) => [...new Array<number>(T - x.ids.length).fill(0), ...new Array<number>(x.ids.length).fill(1)]);
      const out = await model.forward(ids, { attentionMask: mask, outputHiddenStates: true, outputRouterInputs: true, skipLogits: true });
      this.forwardPasses++;
      const L = model.config.numLayers;
      batch.forEach((x, b) => {
        const first = T - x.ids.length;
        const v: PromptVectors = { residualLast: [], residualMean: [], routerLast: [], routerMean: [] };
        for (let l = 0; l < L; l++) {
          // hidden_states[:-1]: entry l is the input of layer l ([B, T, d] flattened).
          const hs = out.hiddenStates![l]!;
          const ri = out.routerInputs!.get(l)!;
          v.residualLast.push(hs.slice((b * T + T - 1) * d, (b * T + T) * d));
          v.routerLast.push(ri.slice((b * T + T - 1) * d, (b * T + T) * d));
          v.residualMean.push(meanTokens(hs, b, T, first, d));
          v.routerMean.push(meanTokens(ri, b, T, first, d));
        }
        this.cache.set(x.p, v);
      });
    }
  }

  async layers(prompts: string[], site: 'residual' | 'router_input', reduce: 'mean' | 'last'): Promise<Float32Array[]> {
    await this.prepare(prompts);
    const d = this.hiddenSize;
    const key = `${site === 'residual' ? 'residual' : 'router'}${reduce === 'mean' ? 'Mean' : 'Last'}` as keyof PromptVectors;
    const L = this.cache.get(prompts[0]!)![key].length;
    return Array.from({ length: L }, (_, l) => {
      const out = new Float32Array(prompts.length * d);
      prompts.forEach((p, i) => out.set(this.cache.get(p)![key][l]!, i * d));
      return out;
    });
  }

  async embeddingSums(prompts: string[]): Promise<Float32Array> {
    const d = this.hiddenSize;
    const out = new Float32Array(prompts.length * d);
    for (const [i, p] of prompts.entries()) {
      let sum = this.embedCache.get(p);
      if (!sum) {
        const row = this.options.embeddingRow;
        if (!row) throw new Error('EngineHiddenStates: cheap_embed needs an embedding reader');
        const acc = new Float64Array(d);
        for (const id of this.tokenize(p)) {
          const r = await row(id);
          for (let k = 0; k < d; k++) acc[k]! += r[k]!;
        }
        sum = Float32Array.from(acc);
        this.embedCache.set(p, sum);
      }
      out.set(sum, i * d);
    }
    return out;
  }
}

/** Mean over the real (unpadded) tokens of row b of a [B, T, d] array. */
function meanTokens(x: Float32Array, b: number, T: number, first: number, d: number): Float32Array {
  const acc = new Float64Array(d);
  for (let t = first; t < T; t++) {
    const o = (b * T + t) * d;
    for (let k = 0; k < d; k++) acc[k]! += x[o + k]!;
  }
  const n = T - first;
  return Float32Array.from(acc, (v) => v / n);
}
