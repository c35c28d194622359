// Loading a checkpoint's weights as tfjs tensors, by tensor role (names come from
// core/architectures, never from strings here). Two ways of holding them:
// resident (everything loaded once, for speed) and streamed (the forward pass asks
// for one decoder layer at a time and releases it before the next, so memory is
// bounded by the largest layer plus activations, DESIGN.md §5). The loader keeps
// its own account of the float32 bytes it holds, and the peak.
import path from 'node:path';
import { tf } from '../backend.js';
import { getArchitecture, tensorName, validateTensors, type ArchitectureSpec } from '../architectures/index.js';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { normalizeConfig } from '../config/normalize.js';
import { isSparseLayer, type NormalizedConfig } from '../config/types.js';
import { MoeforgeError } from '../errors.js';
import type { TensorRole } from '../roles.js';
import type { AttentionWeights } from './attention.js';
import { disposeLayer, type LayerWeights } from './decoder-layer.js';
import type { Linear } from './linear.js';
import type { MlpWeights } from './mlp.js';
import type { MoeWeights } from './moe.js';

/** Embeddings, final norm and LM head (W^T, [d, V]; the embedding transposed when tied). */
export interface HeadWeights {
  finalNorm: tf.Tensor1D;
  lmHeadT: tf.Tensor2D;
  bytes: number;
}

export interface EmbedWeights {
  embed: tf.Tensor2D; // [V, d]
  bytes: number;
}

/** [rows, cols] row-major → [cols, rows]. */
function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[o + c]!;
  }
  return out;
}

/** Transposed-tile edge: 32×32 values stay in cache while one side is read and the other written. */
const TILE = 32;

/**
 * A stored BF16 [rows, cols] matrix as float32 [cols, rows], widened (bits << 16) and
 * transposed in one tiled pass: the engine's weight load is decode + transpose, and
 * fusing them halves that time on BF16 checkpoints (75 ms against 170 ms for a
 * 5632×2048 matrix here), which dominates a streamed pass such as the builder's gates.
 */
export function bf16Transposed(raw: Uint8Array, rows: number, cols: number): Float32Array {
  const src = raw.byteOffset % 2 === 0 ? new Uint16Array(raw.buffer, raw.byteOffset, rows * cols) : new Uint16Array(raw.slice().buffer, 0, rows * cols);
  const out = new Float32Array(rows * cols);
  const bits = new Uint32Array(out.buffer);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) bits[c * rows + r] = src[o + c]! << 16;
      }
    }
  }
  return out;
}

export class WeightLoader {
  readonly config: NormalizedConfig;
  readonly checkpoint: Checkpoint;
  private readonly arch: ArchitectureSpec;
  /** float32 bytes currently held through this loader, and the most ever held at once. */
  heldBytes = 0;
  peakHeldBytes = 0;

  private constructor(config: NormalizedConfig, checkpoint: Checkpoint) {
    this.config = config;
    this.checkpoint = checkpoint;
    this.arch = getArchitecture(config.modelType);
  }

  /**
   * Opens the checkpoint and checks every tensor the config implies against the
   * headers (missing → missing_tensor, wrong shape → shape_mismatch), before
   * anything is read.
   */
  static async open(source: string | Checkpoint): Promise<WeightLoader> {
    // A Checkpoint is passed for one expert of a heterogeneous repo (Checkpoint.view, core/hetero).
    const checkpoint = typeof source === 'string' ? await Checkpoint.open(source) : source;
    const folder = checkpoint.folder;
    let config: NormalizedConfig;
    try {
      config = normalizeConfig(checkpoint.rawConfig, path.join(folder, 'config.json'));
    } catch (e) {
      await checkpoint.close();
      throw e;
    }
    const headers = new Map<string, { dtype: string; shape: number[] }>();
    for (const name of checkpoint.names()) {
      const h = checkpoint.header(name);
      headers.set(name, { dtype: h.dtype, shape: [...h.shape] });
    }
    const errors = validateTensors(config, headers).filter((p) => p.severity === 'error');
    const first = errors[0];
    if (first) {
      await checkpoint.close();
      const code = first.kind === 'missing' ? 'missing_tensor' : first.kind === 'shape' ? 'shape_mismatch' : 'corrupt_safetensors';
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? 's' : ''})` : '';
      throw new MoeforgeError(code, `${first.message}: config.json and the weights disagree${more}`, {
        path: `${folder}: ${first.tensor}`,
      });
    }
    return new WeightLoader(config, checkpoint);
  }

  private name(role: TensorRole, layer?: number, expert?: number): string {
    return tensorName(this.arch, { role, layer, expert });
  }

  private numel(role: TensorRole, layer?: number, expert?: number): number {
    return this.checkpoint.header(this.name(role, layer, expert)).numel;
  }

  private track(bytes: number): void {
    this.heldBytes += bytes;
    this.peakHeldBytes = Math.max(this.peakHeldBytes, this.heldBytes);
  }

  /** Releases weights obtained from this loader and takes them off the account. */
  release(w: { bytes: number }, dispose: () => void): void {
    dispose();
    this.heldBytes -= w.bytes;
  }

  private async vector(role: TensorRole, layer?: number): Promise<tf.Tensor1D> {
    return tf.tensor1d(await this.checkpoint.readFloat32(this.name(role, layer)));
  }

  /** A [out, in] weight as W^T [in, out] (see linear.ts for why). */
  private async linear(role: TensorRole, layer?: number, expert?: number, bias?: TensorRole): Promise<Linear> {
    const name = this.name(role, layer, expert);
    const h = this.checkpoint.header(name);
    const [out, inp] = h.shape as [number, number];
    const w = h.dtype === 'BF16' ? bf16Transposed(await this.checkpoint.readRaw(name), out, inp) : transpose2d(await this.checkpoint.readFloat32(name), out, inp);
    const result: Linear = { wT: tf.tensor2d(w, [inp, out]) };
    if (bias) result.bias = await this.vector(bias, layer);
    return result;
  }

  private async mlpWeights(gate: TensorRole, up: TensorRole, down: TensorRole, layer: number, expert?: number): Promise<MlpWeights> {
    return {
      gate: await this.linear(gate, layer, expert),
      up: await this.linear(up, layer, expert),
      down: await this.linear(down, layer, expert),
    };
  }

  /** The roles (with layer/expert) a decoder layer reads. */
  private layerSlots(layer: number): { role: TensorRole; expert?: number }[] {
    const c = this.config;
    const roles: TensorRole[] = ['input_norm', 'post_attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_o'];
    if (c.attentionBias) roles.push('attn_q_bias', 'attn_k_bias', 'attn_v_bias');
    if (c.attentionOutBias) roles.push('attn_o_bias');
    if (c.qkNorm) roles.push('attn_q_norm', 'attn_k_norm');
    const slots: { role: TensorRole; expert?: number }[] = roles.map((role) => ({ role }));
    if (c.moe && isSparseLayer(c, layer)) {
      slots.push({ role: 'router' });
      for (let e = 0; e < c.moe.numExperts; e++) {
        for (const role of ['expert_gate', 'expert_up', 'expert_down'] as const) slots.push({ role, expert: e });
      }
      if ((c.moe.sharedExpertIntermediateSize ?? 0) > 0) {
        for (const role of ['shared_expert_gate_proj', 'shared_expert_up', 'shared_expert_down', 'shared_expert_gate'] as const) {
          slots.push({ role });
        }
      }
    } else {
      slots.push({ role: 'mlp_gate' }, { role: 'mlp_up' }, { role: 'mlp_down' });
    }
    return slots;
  }

  /** float32 bytes of one decoder layer's weights. */
  layerBytes(layer: number): number {
    return this.layerSlots(layer).reduce((s, x) => s + 4 * this.numel(x.role, layer, x.expert), 0);
  }

  embedBytes(): number {
    return 4 * this.numel('embed');
  }

  headBytes(): number {
    const lm = this.config.tieWordEmbeddings ? this.numel('embed') : this.numel('lm_head');
    return 4 * (lm + this.numel('final_norm'));
  }

  /** float32 bytes of the whole model as the engine holds it resident. */
  totalBytes(): number {
    let total = this.embedBytes() + this.headBytes();
    for (let l = 0; l < this.config.numLayers; l++) total += this.layerBytes(l);
    return total;
  }

  /** The largest set of weights streamed mode holds at once. */
  streamedPeakBytes(): number {
    let peak = Math.max(this.embedBytes(), this.headBytes());
    for (let l = 0; l < this.config.numLayers; l++) peak = Math.max(peak, this.layerBytes(l));
    return peak;
  }

  async loadEmbed(): Promise<EmbedWeights> {
    const c = this.config;
    const embed = tf.tensor2d(await this.checkpoint.readFloat32(this.name('embed')), [c.vocabSize, c.hiddenSize]);
    const bytes = this.embedBytes();
    this.track(bytes);
    return { embed, bytes };
  }

  async loadHead(): Promise<HeadWeights> {
    const finalNorm = await this.vector('final_norm');
    // Tied embeddings: transformers points lm_head at embed_tokens (tie_weights).
    const lmHeadT = (await this.linear(this.config.tieWordEmbeddings ? 'embed' : 'lm_head')).wT;
    const bytes = this.headBytes();
    this.track(bytes);
    return { finalNorm, lmHeadT, bytes };
  }

  async loadLayer(layer: number): Promise<LayerWeights> {
    const c = this.config;
    const attn: AttentionWeights = {
      q: await this.linear('attn_q', layer, undefined, c.attentionBias ? 'attn_q_bias' : undefined),
      k: await this.linear('attn_k', layer, undefined, c.attentionBias ? 'attn_k_bias' : undefined),
      v: await this.linear('attn_v', layer, undefined, c.attentionBias ? 'attn_v_bias' : undefined),
      o: await this.linear('attn_o', layer, undefined, c.attentionOutBias ? 'attn_o_bias' : undefined),
    };
    if (c.qkNorm) {
      attn.qNorm = await this.vector('attn_q_norm', layer);
      attn.kNorm = await this.vector('attn_k_norm', layer);
    }
    const w: LayerWeights = {
      layer,
      inputNorm: await this.vector('input_norm', layer),
      postAttnNorm: await this.vector('post_attn_norm', layer),
      attn,
      bytes: this.layerBytes(layer),
    };
    if (c.moe && isSparseLayer(c, layer)) {
      const moe: MoeWeights = { router: await this.linear('router', layer), experts: [] };
      for (let e = 0; e < c.moe.numExperts; e++) {
        moe.experts.push(await this.mlpWeights('expert_gate', 'expert_up', 'expert_down', layer, e));
      }
      if ((c.moe.sharedExpertIntermediateSize ?? 0) > 0) {
        moe.shared = await this.mlpWeights('shared_expert_gate_proj', 'shared_expert_up', 'shared_expert_down', layer);
        moe.sharedGate = await this.linear('shared_expert_gate', layer);
      }
      w.moe = moe;
    } else {
      w.mlp = await this.mlpWeights('mlp_gate', 'mlp_up', 'mlp_down', layer);
    }
    this.track(w.bytes);
    return w;
  }

  releaseLayer(w: LayerWeights): void {
    this.release(w, () => disposeLayer(w));
  }

  releaseEmbed(w: EmbedWeights): void {
    this.release(w, () => w.embed.dispose());
  }

  releaseHead(w: HeadWeights): void {
    this.release(w, () => {
      w.finalNorm.dispose();
      w.lmHeadT.dispose();
    });
  }

  async close(): Promise<void> {
    await this.checkpoint.close();
  }
}
