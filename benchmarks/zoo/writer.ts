// Writes a zoo model as a Hugging Face folder the engine (and transformers) load:
// config.json in the v4 spelling (benchmarks/synthetic/dense-model.ts's
// syntheticConfig), model.safetensors in F32 under llama's tensor names,
// tokenizer.json + tokenizer_config.json + special_tokens_map.json +
// generation_config.json, and a short README.md saying what the model was trained on.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tf } from '../../core/backend.js';
import { fsError } from '../../core/errors.js';
import { writeSafetensors } from '../../core/safetensors/writer.js';
import { syntheticConfig } from '../synthetic/dense-model.js';
import type { ZooParams } from './model.js';
import { BOS_ID, EOS_ID, PAD_ID, zooTokenizerFiles } from './tokenizer.js';

/** [in, out] W^T variable → [out, in] row-major bytes, as torch.nn.Linear stores weight. */
function linearBytes(wT: tf.Tensor2D): Uint8Array {
  const t = tf.transpose(wT);
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

function vectorBytes(v: tf.Tensor): Uint8Array {
  const data = v.dataSync() as Float32Array;
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export function zooConfig(p: ZooParams): Record<string, unknown> {
  const s = p.shape;
  const config = syntheticConfig({
    hiddenSize: s.hiddenSize,
    intermediateSize: s.intermediateSize,
    numLayers: s.numLayers,
    vocabSize: s.vocabSize,
    numHeads: s.numHeads,
    numKvHeads: s.numKvHeads,
    seed: 0,
    tieWordEmbeddings: false,
  });
  config.max_position_embeddings = 64;
  config.pad_token_id = PAD_ID;
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function writeText(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text);
  } catch (e) {
    throw fsError(e, file, 'write');
  }
}

export interface ZooWriteOptions {
  /** config.json to write (default zooConfig(p): llama). */
  config?: Record<string, unknown>;
  /**
   * Write zero q/k/v biases after each projection: a qwen2 checkpoint of a model the
   * trainer (which has no biases) trained, computing exactly what was trained.
   */
  zeroQkvBias?: boolean;
}

/** Writes `folder` (created if missing; files inside are replaced). */
export async function writeZooModel(folder: string, p: ZooParams, card: string, options: ZooWriteOptions = {}): Promise<void> {
  await mkdir(folder, { recursive: true }).catch((e: unknown) => {
    throw fsError(e, folder, 'write');
  });
  const s = p.shape;
  const d = s.hiddenSize;
  const hD = d / s.numHeads;
  const tensors: { name: string; dtype: 'F32'; shape: number[]; data: Uint8Array }[] = [];
  const add = (name: string, shape: number[], data: Uint8Array) => tensors.push({ name, dtype: 'F32', shape, data });
  const bias = (name: string, n: number) => {
    if (options.zeroQkvBias) add(name, [n], new Uint8Array(4 * n));
  };
  add('model.embed_tokens.weight', [s.vocabSize, d], vectorBytes(p.embed));
  p.layers.forEach((l, i) => {
    const pre = `model.layers.${i}`;
    add(`${pre}.input_layernorm.weight`, [d], vectorBytes(l.inputNorm));
    add(`${pre}.self_attn.q_proj.weight`, [s.numHeads * hD, d], linearBytes(l.q));
    bias(`${pre}.self_attn.q_proj.bias`, s.numHeads * hD);
    add(`${pre}.self_attn.k_proj.weight`, [s.numKvHeads * hD, d], linearBytes(l.k));
    bias(`${pre}.self_attn.k_proj.bias`, s.numKvHeads * hD);
    add(`${pre}.self_attn.v_proj.weight`, [s.numKvHeads * hD, d], linearBytes(l.v));
    bias(`${pre}.self_attn.v_proj.bias`, s.numKvHeads * hD);
    add(`${pre}.self_attn.o_proj.weight`, [d, s.numHeads * hD], linearBytes(l.o));
    add(`${pre}.post_attention_layernorm.weight`, [d], vectorBytes(l.postAttnNorm));
    add(`${pre}.mlp.gate_proj.weight`, [s.intermediateSize, d], linearBytes(l.gate));
    add(`${pre}.mlp.up_proj.weight`, [s.intermediateSize, d], linearBytes(l.up));
    add(`${pre}.mlp.down_proj.weight`, [d, s.intermediateSize], linearBytes(l.down));
  });
  add('model.norm.weight', [d], vectorBytes(p.finalNorm));
  add('lm_head.weight', [s.vocabSize, d], linearBytes(p.lmHeadT));
  await writeSafetensors(path.join(folder, 'model.safetensors'), tensors, { format: 'pt' });
  await writeText(path.join(folder, 'config.json'), `${JSON.stringify(options.config ?? zooConfig(p), null, 2)}\n`);
  const generation = { _from_model_config: true, bos_token_id: BOS_ID, eos_token_id: EOS_ID, pad_token_id: PAD_ID, transformers_version: '4.49.0' };
  await writeText(path.join(folder, 'generation_config.json'), `${JSON.stringify(generation, null, 2)}\n`);
  for (const [name, text] of Object.entries(zooTokenizerFiles())) await writeText(path.join(folder, name), text);
  await writeText(path.join(folder, 'README.md'), card);
}
