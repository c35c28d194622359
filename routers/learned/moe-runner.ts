// The MoE being built, run one layer at a time on training sequences, so that layer
// l's router is trained on the router inputs the finished model will really see: the
// residual stream after layers < l with their already-trained gates (attention and
// norms from the base, each routed expert's FFN from its own dense model, as the
// builder assembles a Mixtral). Each sequence runs alone (B = 1, no padding); the
// residual stream of every sequence is kept between layers, so each layer is computed
// once. Router inputs are the post_attention_layernorm outputs (modeling_mixtral.py).
//
// Limits: attention/norms are the base's (with a merged `shared_weights:` the true
// inputs differ slightly); sliding windows are ignored (full causal attention).
import { initBackend, tf } from '../../core/backend.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import { attention, type AttentionShape } from '../../core/model/attention.js';
import type { LayerWeights } from '../../core/model/decoder-layer.js';
import { sparseMoe } from '../../core/model/moe.js';
import { rmsNorm } from '../../core/model/rms-norm.js';
import { ropeInvFreq, ropeTables } from '../../core/model/rope.js';
import { WeightLoader } from '../../core/model/weights.js';

/** A batch of sequences, right-padded to T (padding keys masked; padded rows ignored). */
interface BatchState {
  lengths: number[];
  T: number;
  h: tf.Tensor2D; // [B*T, d] residual stream entering the current layer
  h1?: tf.Tensor2D; // [B*T, d] after the current layer's attention
  x?: tf.Tensor2D; // [B*T, d] router input of the current layer
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  mask: tf.Tensor4D; // [B, 1, T, T]
}

/** Sequences per batch: few kernel launches, bounded activations. */
const BATCH = 32;

export class MoeLayerRunner {
  readonly config: NormalizedConfig;
  private states: BatchState[] = [];
  private base: LayerWeights | undefined;

  private constructor(
    private readonly baseLoader: WeightLoader,
    private readonly expertLoaders: WeightLoader[],
    private readonly expertsPerToken: number,
    private readonly normTopkProb: boolean,
  ) {
    this.config = baseLoader.config;
  }

  static async open(baseFolder: string, expertFolders: string[], moe: { expertsPerToken: number; normTopkProb: boolean }): Promise<MoeLayerRunner> {
    await initBackend();
    const baseLoader = await WeightLoader.open(baseFolder);
    const experts: WeightLoader[] = [];
    try {
      for (const f of expertFolders) experts.push(await WeightLoader.open(f));
    } catch (e) {
      await baseLoader.close();
      for (const l of experts) await l.close();
      throw e;
    }
    return new MoeLayerRunner(baseLoader, experts, moe.expertsPerToken, moe.normTopkProb);
  }

  /** Embeds the sequences (each a list of token ids), in batches of BATCH. */
  async start(sequences: number[][]): Promise<void> {
    this.disposeStates();
    const c = this.config;
    const embed = await this.baseLoader.loadEmbed();
    try {
      const maxLen = Math.max(...sequences.map((s) => s.length));
      const invFreq = ropeInvFreq(c.rope, c.headDim, maxLen, c.maxPositionEmbeddings);
      for (let i = 0; i < sequences.length; i += BATCH) {
        const batch = sequences.slice(i, i + BATCH);
        const B = batch.length;
        const T = Math.max(...batch.map((s) => s.length));
        const { cos, sin } = ropeTables(invFreq, batch.map(() => Array.from({ length: T }, (_, t) => t)));
        // Causal, padding keys masked; a padded query row still sees its real prefix (no NaN).
        const m = new Float32Array(B * T * T);
        batch.forEach((ids, b) => {
          for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) if (k > q || k >= ids.length) m[(b * T + q) * T + k] = -1e30;
        });
        const flat = batch.flatMap((ids) => [...ids, ...new Array<number>(T - ids.length).fill(0)]);
        this.states.push({
          lengths: batch.map((s) => s.length),
          T,
          h: tf.tidy(() => tf.gather(embed.embed, tf.tensor1d(flat, 'int32'))) as tf.Tensor2D, // [B*T, d]
          cos,
          sin,
          mask: tf.tensor4d(m, [B, 1, T, T]),
        });
      }
    } finally {
      this.baseLoader.releaseEmbed(embed);
    }
  }

  /** Runs layer `layer`'s attention for every sequence; returns each one's router inputs [T, d]. */
  async routerInputs(layer: number): Promise<Float32Array[]> {
    const c = this.config;
    if (this.base) this.baseLoader.releaseLayer(this.base);
    const w = (this.base = await this.baseLoader.loadLayer(layer));
    const out: Float32Array[] = [];
    for (const s of this.states) {
      const shape: AttentionShape = { batch: s.lengths.length, seqLen: s.T, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, rmsNormEps: c.rmsNormEps };
      s.h1 = tf.tidy(() => tf.add(s.h, attention(rmsNorm(s.h, w.inputNorm, c.rmsNormEps), w.attn, shape, { cos: s.cos, sin: s.sin, mask: s.mask }))) as tf.Tensor2D;
      s.x = rmsNorm(s.h1, w.postAttnNorm, c.rmsNormEps); // [B*T, d]
      const x = s.x.dataSync() as Float32Array;
      const d = c.hiddenSize;
      s.lengths.forEach((n, b) => out.push(x.slice(b * s.T * d, (b * s.T + n) * d))); // real rows of sequence b: [n, d]
    }
    return out;
  }

  /** Finishes layer `layer` with router weight `gate` [E, d]: h ← h1 + MoE(x). */
  async advance(layer: number, gate: Float32Array): Promise<void> {
    const c = this.config;
    const E = this.expertLoaders.length;
    const experts: LayerWeights[] = [];
    try {
      for (const l of this.expertLoaders) experts.push(await l.loadLayer(layer));
      const wT = tf.tidy(() => tf.transpose(tf.tensor2d(gate, [E, c.hiddenSize]))) as tf.Tensor2D; // [d, E]
      try {
        for (const s of this.states) {
          const { out } = sparseMoe(s.x!, { router: { wT }, experts: experts.map((w) => w.mlp!) }, this.expertsPerToken, this.normTopkProb);
          s.h.dispose();
          s.h = tf.add(s.h1!, out) as tf.Tensor2D;
          out.dispose();
          s.h1!.dispose();
          s.x!.dispose();
          delete s.h1;
          delete s.x;
        }
      } finally {
        wT.dispose();
      }
    } finally {
      experts.forEach((w, i) => this.expertLoaders[i]!.releaseLayer(w));
    }
  }

  private disposeStates(): void {
    for (const s of this.states) for (const t of [s.h, s.h1, s.x, s.cos, s.sin, s.mask]) t?.dispose();
    this.states = [];
  }

  async close(): Promise<void> {
    this.disposeStates();
    if (this.base) this.baseLoader.releaseLayer(this.base);
    this.base = undefined;
    await this.baseLoader.close();
    for (const l of this.expertLoaders) await l.close();
  }
}
