// A causal language model (LlamaForCausalLM and its relatives: Mistral, Qwen2,
// Qwen3, Mixtral, Qwen2-MoE, Qwen3-MoE) on tfjs:
//   h = embed_tokens[ids]; for each layer h = decoderLayer(h);
//   h = RMSNorm(h; model.norm); logits = h lm_head^T.
// Outputs follow transformers: `hiddenStates` is the `output_hidden_states`
// tuple (embeddings, the outputs of layers 0..L-2, then the final norm of the
// last layer's output: L+1 entries), router logits are pre-softmax, per sparse layer.
import { initBackend, tf, type BackendName } from '../backend.js';
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import type { NormalizedConfig } from '../config/types.js';
import { MoeforgeError } from '../errors.js';
import { Rng } from '../rng.js';
import type { AttentionShape } from './attention.js';
import { decoderLayer, type LayerWeights, type MoeSettings } from './decoder-layer.js';
import { KvCache } from './kv-cache.js';
import { linear } from './linear.js';
import { rmsNorm } from './rms-norm.js';
import { ropeInvFreq, ropeTables } from './rope.js';
import { argmax, logSoftmax, sampleToken } from './sampling.js';
import { WeightLoader, type EmbedWeights, type HeadWeights } from './weights.js';

export interface ForwardOptions {
  /** [B, T]: 1 = real token, 0 = padding (left or right). */
  attentionMask?: number[][];
  outputHiddenStates?: boolean;
  outputRouterInputs?: boolean;
  outputRouterLogits?: boolean;
  /** [B, T]; default: 0..T-1, or with a mask the count of real tokens before each one (as generate() does). */
  positionIds?: number[][];
  /**
   * Stop after the last decoder layer: no final norm, no LM head (`logits` is empty and
   * `hiddenStates` has L entries, the inputs of the layers). For callers that read only
   * hidden states or router inputs (the builder's gates): in streamed mode the head is
   * then never loaded, which is the largest single weight of most models.
   */
  skipLogits?: boolean;
}

export interface ForwardResult {
  logits: Float32Array; // [B, T, V]
  hiddenStates?: Float32Array[]; // L+1 × [B, T, d]
  routerInputs?: Map<number, Float32Array>; // layer → [B*T, d]
  routerLogits?: Map<number, Float32Array>; // sparse layer → [B*T, E]
  batch: number;
  seqLen: number;
}

export interface LoadOptions {
  mode?: 'resident' | 'streamed' | 'auto';
  /** float32 weight bytes allowed at once; 'auto' streams when the model needs more. */
  maxResidentBytes?: number;
  backend?: BackendName;
}

export interface GenerateOptions {
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stopTokens?: number[];
  /** Called after each new token with every token so far; returning true stops (stop strings, as `serve` checks them). */
  shouldStop?: (tokens: readonly number[]) => boolean;
}

interface RunOptions {
  positions: number[][];
  keyMask?: number[][]; // [B, S] over past + new keys
  cache?: KvCache;
  lastOnly?: boolean;
  skipLogits?: boolean;
  hiddenStates?: Float32Array[];
  routerInputs?: Map<number, Float32Array>;
  routerLogits?: Map<number, Float32Array>;
}

/** Additive mask value: finite so that a fully masked (padding) query row gives no NaN. */
const MASKED = -1e30;

export class CausalLM {
  readonly config: NormalizedConfig;
  readonly mode: 'resident' | 'streamed';
  readonly folder: string;
  private readonly loader: WeightLoader;
  private resident: { embed: EmbedWeights; layers: LayerWeights[]; head: HeadWeights } | undefined;
  private disposed = false;

  private constructor(folder: string, loader: WeightLoader, mode: 'resident' | 'streamed') {
    this.folder = folder;
    this.loader = loader;
    this.config = loader.config;
    this.mode = mode;
  }

  /** From a model folder, or a Checkpoint (an expert of a heterogeneous repo: Checkpoint.view). */
  static async load(source: string | Checkpoint, options: LoadOptions = {}): Promise<CausalLM> {
    await initBackend(options.backend);
    const loader = await WeightLoader.open(source);
    const folder = loader.checkpoint.folder;
    try {
      const total = loader.totalBytes();
      const limit = options.maxResidentBytes;
      const requested = options.mode ?? 'auto';
      const mode = requested === 'auto' ? (limit !== undefined && total > limit ? 'streamed' : 'resident') : requested;
      if (limit !== undefined) {
        const need = mode === 'resident' ? total : loader.streamedPeakBytes();
        if (need > limit) {
          throw new MoeforgeError(
            'out_of_memory',
            `${mode} mode needs ${need} bytes of float32 weights at once, over --max-resident-bytes ${limit}`,
            { path: folder },
          );
        }
      }
      const model = new CausalLM(folder, loader, mode);
      if (mode === 'resident') {
        const embed = await loader.loadEmbed();
        const layers: LayerWeights[] = [];
        for (let l = 0; l < loader.config.numLayers; l++) layers.push(await loader.loadLayer(l));
        model.resident = { embed, layers, head: await loader.loadHead() };
      }
      return model;
    } catch (e) {
      await loader.close();
      throw e;
    }
  }

  /** float32 weight bytes held right now, and the most held at once (loader accounting). */
  get weightBytes(): { held: number; peak: number; total: number } {
    return { held: this.loader.heldBytes, peak: this.loader.peakHeldBytes, total: this.loader.totalBytes() };
  }

  private checkIds(inputIds: number[][]): void {
    if (this.disposed) throw new Error('CausalLM used after dispose()');
    const width = inputIds[0]?.length ?? 0;
    if (inputIds.length === 0 || width === 0) {
      throw new MoeforgeError('invalid_argument', 'input_ids is empty', { path: 'input_ids' });
    }
    const vocab = this.config.vocabSize;
    inputIds.forEach((row, b) => {
      if (row.length !== width) {
        throw new MoeforgeError('invalid_argument', `row ${b} has ${row.length} ids, row 0 has ${width} (pad and pass an attention mask)`, {
          path: 'input_ids',
        });
      }
      row.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= vocab) {
          throw new MoeforgeError('invalid_argument', `token id ${id} at [${b}, ${t}] is outside the vocabulary (vocab_size ${vocab})`, {
            path: 'input_ids',
          });
        }
      });
    });
  }

  /** Additive masks [B, 1, T, S], one per distinct sliding window (null = full causal). */
  private buildMasks(batch: number, seqLen: number, past: number, keyMask: number[][] | undefined): Map<number | null, tf.Tensor4D> {
    const masks = new Map<number | null, tf.Tensor4D>();
    const keys = past + seqLen;
    for (const window of new Set(this.config.slidingWindows)) {
      const m = new Float32Array(batch * seqLen * keys);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < seqLen; i++) {
          const q = past + i; // query index in the full sequence
          const o = (b * seqLen + i) * keys;
          for (let j = 0; j < keys; j++) {
            // causal; padding keys masked; sliding window as transformers' masking_utils
            // (`sliding_window_overlay`: kv_idx > q_idx - window, so window 1 sees itself only)
            const ok = j <= q && (keyMask?.[b]?.[j] ?? 1) !== 0 && (window === null || q - j < window);
            if (!ok) m[o + j] = MASKED;
          }
        }
      }
      masks.set(window, tf.tensor4d(m, [batch, 1, seqLen, keys]));
    }
    return masks;
  }

  /** The whole pass; returns logits [B, T, V] (or [B, 1, V] with lastOnly) as a Float32Array. */
  private async run(inputIds: number[][], o: RunOptions): Promise<Float32Array> {
    const c = this.config;
    const batch = inputIds.length;
    const seqLen = inputIds[0]!.length;
    const past = o.cache?.length ?? 0;
    const shape: AttentionShape = {
      batch,
      seqLen,
      numHeads: c.numHeads,
      numKvHeads: c.numKvHeads,
      headDim: c.headDim,
      rmsNormEps: c.rmsNormEps,
    };
    const moe: MoeSettings | undefined = c.moe ? { expertsPerToken: c.moe.expertsPerToken, normTopkProb: c.moe.normTopkProb } : undefined;
    const streamed = this.mode === 'streamed';

    // 1. embeddings (no scaling): [B*T, d]
    const embed = streamed ? await this.loader.loadEmbed() : this.resident!.embed;
    let h = tf.tidy(() => tf.gather(embed.embed, tf.tensor1d(inputIds.flat(), 'int32'))) as tf.Tensor2D;
    if (streamed) this.loader.releaseEmbed(embed);
    o.hiddenStates?.push(h.dataSync() as Float32Array);

    // 2. decoder layers
    let maxPos = 0;
    for (const row of o.positions) for (const p of row) maxPos = Math.max(maxPos, p);
    const invFreq = ropeInvFreq(c.rope, c.headDim, maxPos + 1, c.maxPositionEmbeddings);
    const { cos, sin } = ropeTables(invFreq, o.positions);
    const masks = this.buildMasks(batch, seqLen, past, o.keyMask);
    try {
      for (let l = 0; l < c.numLayers; l++) {
        const w = streamed ? await this.loader.loadLayer(l) : this.resident!.layers[l]!;
        try {
          const out = decoderLayer(
            h,
            w,
            shape,
            { cos, sin, mask: masks.get(c.slidingWindows[l] ?? null)! },
            moe,
            o.cache?.layers[l],
            { routerInput: o.routerInputs !== undefined },
          );
          h.dispose();
          h = out.h;
          if (out.routerInput) o.routerInputs?.set(l, out.routerInput);
          if (out.routerLogits) o.routerLogits?.set(l, out.routerLogits);
        } finally {
          if (streamed) this.loader.releaseLayer(w);
        }
        if (l < c.numLayers - 1) o.hiddenStates?.push(h.dataSync() as Float32Array);
      }
    } finally {
      cos.dispose();
      sin.dispose();
      for (const m of masks.values()) m.dispose();
    }
    if (o.cache) o.cache.length = past + seqLen;
    if (o.skipLogits) {
      h.dispose();
      return new Float32Array(0);
    }

    // 3. final norm and LM head
    const head = streamed ? await this.loader.loadHead() : this.resident!.head;
    try {
      const normed = rmsNorm(h, head.finalNorm, c.rmsNormEps); // [B*T, d]
      h.dispose();
      o.hiddenStates?.push(normed.dataSync() as Float32Array);
      const logits = tf.tidy(() => {
        const rows = o.lastOnly
          ? tf.gather(normed, tf.tensor1d(Array.from({ length: batch }, (_, b) => b * seqLen + seqLen - 1), 'int32'))
          : normed;
        return linear(rows as tf.Tensor2D, { wT: head.lmHeadT }); // [B*T, V]
      });
      normed.dispose();
      const data = logits.dataSync() as Float32Array;
      logits.dispose();
      return data;
    } finally {
      if (streamed) this.loader.releaseHead(head);
    }
  }

  async forward(inputIds: number[][], options: ForwardOptions = {}): Promise<ForwardResult> {
    this.checkIds(inputIds);
    const batch = inputIds.length;
    const seqLen = inputIds[0]!.length;
    const mask = options.attentionMask;
    if (mask && (mask.length !== batch || mask.some((r) => r.length !== seqLen))) {
      throw new MoeforgeError('invalid_argument', `attention mask must be [${batch}, ${seqLen}] like input_ids`, { path: 'attention_mask' });
    }
    let positions = options.positionIds;
    if (positions && (positions.length !== batch || positions.some((r) => r.length !== seqLen))) {
      throw new MoeforgeError('invalid_argument', `position ids must be [${batch}, ${seqLen}] like input_ids`, { path: 'position_ids' });
    }
    // With a mask, position = number of real tokens before (generate()'s
    // `attention_mask.cumsum(-1) - 1`, padding set to 1), so a left-padded row
    // sees the same positions as the unpadded sequence.
    positions ??= mask
      ? mask.map((row) => {
          let seen = 0;
          return row.map((m) => (m ? seen++ : 1));
        })
      : inputIds.map((row) => row.map((_, t) => t));
    const result: ForwardResult = { logits: new Float32Array(0), batch, seqLen };
    if (options.outputHiddenStates) result.hiddenStates = [];
    if (options.outputRouterInputs) result.routerInputs = new Map();
    if (options.outputRouterLogits) result.routerLogits = new Map();
    const run: RunOptions = { positions };
    if (options.skipLogits) run.skipLogits = true;
    if (mask) run.keyMask = mask;
    if (result.hiddenStates) run.hiddenStates = result.hiddenStates;
    if (result.routerInputs) run.routerInputs = result.routerInputs;
    if (result.routerLogits) run.routerLogits = result.routerLogits;
    result.logits = await this.run(inputIds, run);
    return result;
  }

  /** log P(ids[t] | ids[<t]) for t = 1..n-1 (the first token has no prediction). */
  async tokenLogprobs(ids: number[]): Promise<number[]> {
    const { logits } = await this.forward([ids]);
    const v = this.config.vocabSize;
    const out: number[] = [];
    for (let t = 1; t < ids.length; t++) out.push(logSoftmax(logits.subarray((t - 1) * v, t * v))[ids[t]!]!);
    return out;
  }

  /**
   * log P(continuation | context), summed, as lm-evaluation-harness computes it:
   * one pass over (context + continuation)[:-1]; `isGreedy` when every
   * continuation token is the argmax at its position.
   */
  async logLikelihood(context: number[], continuation: number[]): Promise<{ logprob: number; isGreedy: boolean; tokenLogprobs: number[] }> {
    if (context.length === 0) {
      throw new MoeforgeError('invalid_argument', 'the context is empty: the first continuation token would have no prediction (prepend BOS)', {
        path: 'context',
      });
    }
    if (continuation.length === 0) return { logprob: 0, isGreedy: true, tokenLogprobs: [] };
    const all = [...context, ...continuation];
    const { logits } = await this.forward([all.slice(0, -1)]);
    const v = this.config.vocabSize;
    const tokenLogprobs: number[] = [];
    let isGreedy = true;
    continuation.forEach((token, i) => {
      const row = logits.subarray((context.length - 1 + i) * v, (context.length + i) * v);
      tokenLogprobs.push(logSoftmax(row)[token]!);
      if (argmax(row) !== token) isGreedy = false;
    });
    return { logprob: tokenLogprobs.reduce((a, b) => a + b, 0), isGreedy, tokenLogprobs };
  }

  /** New tokens after the prompt (stop token included when hit), with a KV cache. */
  async generate(prompt: number[], options: GenerateOptions): Promise<number[]> {
    this.checkIds([prompt]);
    const rng = new Rng(options.seed ?? 0).derive('generate');
    const stop = new Set(options.stopTokens ?? []);
    const cache = new KvCache(this.config.numLayers);
    const out: number[] = [];
    try {
      let logits = await this.run([prompt], { positions: [prompt.map((_, t) => t)], cache, lastOnly: true });
      while (out.length < options.maxNewTokens) {
        const token = sampleToken(logits, options, rng);
        out.push(token);
        if (stop.has(token) || out.length >= options.maxNewTokens || options.shouldStop?.(out)) break;
        logits = await this.run([[token]], { positions: [[cache.length]], cache, lastOnly: true });
      }
    } finally {
      cache.dispose();
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.resident) {
      const r = this.resident;
      this.loader.releaseEmbed(r.embed);
      for (const w of r.layers) this.loader.releaseLayer(w);
      this.loader.releaseHead(r.head);
      this.resident = undefined;
    }
    // Closing file handles is async; nothing waits on it.
    void this.loader.close();
  }
}
