// Forward-engine prefill throughput (issue 3): a generated ~125M-parameter llama
// (hidden 768, 12 layers, 12 heads / 4 KV heads, FFN 2048, vocab 32000) and a
// 4-expert top-2 Mixtral of the same width and depth, resident, on the default
// backend. Reported: prefill tokens/s and GFLOP/s (matmul FLOPs the pass does:
// projections, the experts tokens are routed to, attention scores and values, LM
// head), next to the GFLOP/s of plain tf.matMul calls of exactly the same shapes
// in the same run (the ceiling this backend gives), and their ratio.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getArchitecture, parseTensorName, tensorName } from '../../core/architectures/index.js';
import { initBackend, tf } from '../../core/backend.js';
import { Checkpoint } from '../../core/checkpoint/checkpoint.js';
import { encodeFloat32 } from '../../core/dtypes.js';
import { CausalLM } from '../../core/model/causal-lm.js';
import { Rng } from '../../core/rng.js';
import { writeSafetensors } from '../../core/safetensors/writer.js';
import { writeSyntheticModel, syntheticConfig } from '../synthetic/dense-model.js';
import type { PerfSuite } from './run.js';

const D = 768;
const LAYERS = 12;
const HEADS = 12;
const KV_HEADS = 4;
const FF = 2048;
const VOCAB = 32000;
const EXPERTS = 4;
const TOP_K = 2;
const TOKENS = 256; // one prompt of 256 tokens
const HEAD_DIM = D / HEADS;

const EXPERT_ROLE = { mlp_gate: 'expert_gate', mlp_up: 'expert_up', mlp_down: 'expert_down' } as const;

/** The llama's tensors as a Mixtral: every expert a copy of the dense MLP, random routers; one shard per layer. */
async function writeMixtral(llamaFolder: string, folder: string, llamaConfig: Record<string, unknown>): Promise<void> {
  const src = await Checkpoint.open(llamaFolder);
  const llama = getArchitecture('llama');
  const mixtral = getArchitecture('mixtral');
  const rng = new Rng(11);
  const byLayer = new Map<number | undefined, string[]>();
  for (const name of src.names()) {
    const layer = parseTensorName(llama, name)!.layer;
    byLayer.set(layer, [...(byLayer.get(layer) ?? []), name]);
  }
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  let shardIndex = 0;
  for (const [layer, names] of byLayer) {
    const file = `model-${String(++shardIndex).padStart(5, '0')}.safetensors`;
    const tensors: { name: string; dtype: 'F32'; shape: number[]; data: Uint8Array }[] = [];
    for (const name of names) {
      const slot = parseTensorName(llama, name)!;
      const data = encodeFloat32('F32', await src.readFloat32(name));
      const shape = [...src.header(name).shape];
      if (slot.role in EXPERT_ROLE) {
        const role = EXPERT_ROLE[slot.role as keyof typeof EXPERT_ROLE];
        for (let e = 0; e < EXPERTS; e++) tensors.push({ name: tensorName(mixtral, { role, layer: layer!, expert: e }), dtype: 'F32', shape, data });
      } else {
        tensors.push({ name: tensorName(mixtral, slot), dtype: 'F32', shape, data });
      }
    }
    if (layer !== undefined) {
      const router = Float32Array.from({ length: EXPERTS * D }, () => 0.5 * rng.normal());
      tensors.push({ name: tensorName(mixtral, { role: 'router', layer }), dtype: 'F32', shape: [EXPERTS, D], data: encodeFloat32('F32', router) });
    }
    await writeSafetensors(path.join(folder, file), tensors, { format: 'pt' });
    for (const t of tensors) {
      weightMap[t.name] = file;
      totalSize += t.data.byteLength;
    }
  }
  await src.close();
  await writeFile(path.join(folder, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  const config = {
    ...llamaConfig,
    architectures: ['MixtralForCausalLM'],
    model_type: 'mixtral',
    num_local_experts: EXPERTS,
    num_experts_per_tok: TOP_K,
    router_aux_loss_coef: 0.02,
    sliding_window: null,
  };
  await writeFile(path.join(folder, 'config.json'), JSON.stringify(config, null, 2));
}

/** Matmul FLOPs of one prefill of T tokens (batch 1), counting what the engine computes. */
function prefillFlops(moe: boolean): number {
  const t = TOKENS;
  const proj = 2 * t * D * (HEADS * HEAD_DIM * 2 + KV_HEADS * HEAD_DIM * 2); // q, o + k, v
  const attn = 2 * 2 * HEADS * t * t * HEAD_DIM; // scores and probs·V over the full square
  const ffn = moe ? 2 * t * TOP_K * 3 * D * FF + 2 * t * D * EXPERTS : 2 * t * 3 * D * FF;
  return LAYERS * (proj + attn + ffn) + 2 * t * D * VOCAB;
}

/** Seconds for plain tf.matMul of the same shapes as one prefill (weights pre-transposed, as the engine keeps them). */
function matmulSeconds(moe: boolean): number {
  const t = TOKENS;
  const rows = moe ? (t * TOP_K) / EXPERTS : t; // tokens per expert with even routing
  const shapes: [number, number, number, number][] = [
    // [M, K, N, times per layer]
    [t, D, HEADS * HEAD_DIM, 2],
    [t, D, KV_HEADS * HEAD_DIM, 2],
    [rows, D, FF, moe ? 2 * EXPERTS : 2],
    [rows, FF, D, moe ? EXPERTS : 1],
  ];
  let seconds = 0;
  const time = (m: number, k: number, n: number, times: number, batch = 1) => {
    const a = tf.randomNormal(batch === 1 ? [m, k] : [batch, m, k]);
    const b = tf.randomNormal(batch === 1 ? [k, n] : [batch, k, n]);
    tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D).dispose(); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < times; i++) {
      const c = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
      c.dataSync();
      c.dispose();
    }
    seconds += (performance.now() - t0) / 1000;
    a.dispose();
    b.dispose();
  };
  for (const [m, k, n, times] of shapes) time(m, k, n, times * LAYERS);
  time(t, HEAD_DIM, t, 2 * LAYERS, HEADS); // scores and probs·V: [nH, T, hD] x [nH, hD, T]
  time(t, D, VOCAB, 1);
  return seconds;
}

async function prefill(folder: string, moe: boolean): Promise<Record<string, number>> {
  const loadStart = performance.now();
  const model = await CausalLM.load(folder, { mode: 'resident' });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  try {
    const ids = [Array.from({ length: TOKENS }, (_, i) => (i * 7919 + 13) % VOCAB)];
    await model.forward([ids[0]!.slice(0, 16)]); // warm-up: kernels compiled, caches primed
    const t0 = performance.now();
    await model.forward(ids);
    const seconds = (performance.now() - t0) / 1000;
    const flops = prefillFlops(moe);
    const mmSeconds = matmulSeconds(moe);
    const gflops = flops / seconds / 1e9;
    const mmGflops = flops / mmSeconds / 1e9;
    return {
      params_millions: model.weightBytes.total / 4 / 1e6,
      load_s: loadSeconds,
      prefill_tokens_per_s: TOKENS / seconds,
      prefill_gflops: gflops,
      matmul_same_shapes_gflops: mmGflops,
      ratio: gflops / mmGflops,
    };
  } finally {
    model.dispose();
  }
}

export const suite: PerfSuite = {
  name: 'engine',
  description: `prefill of ${TOKENS} tokens, resident, llama ${D}x${LAYERS} (vocab ${VOCAB}) and a ${EXPERTS}-expert top-${TOP_K} mixtral of the same width; plain tf.matMul of the same shapes as the ceiling`,
  async run() {
    const backend = await initBackend();
    const root = await mkdtemp(path.join(os.tmpdir(), 'moeforge-bench-engine-'));
    try {
      const llamaFolder = path.join(root, 'llama');
      const options = { hiddenSize: D, intermediateSize: FF, numLayers: LAYERS, vocabSize: VOCAB, numHeads: HEADS, numKvHeads: KV_HEADS, seed: 1 };
      await writeSyntheticModel(llamaFolder, options);
      const dense = await prefill(llamaFolder, false);
      const mixtralFolder = path.join(root, 'mixtral');
      await import('node:fs/promises').then((fs) => fs.mkdir(mixtralFolder));
      await writeMixtral(llamaFolder, mixtralFolder, syntheticConfig(options));
      await rm(llamaFolder, { recursive: true, force: true });
      const moe = await prefill(mixtralFolder, true);
      const rows: Record<string, number | string> = { backend: backend.detail };
      for (const [k, v] of Object.entries(dense)) rows[`llama_${k}`] = v;
      for (const [k, v] of Object.entries(moe)) rows[`mixtral_${k}`] = v;
      return rows;
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
};
