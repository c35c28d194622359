// Families and features without a golden, checked by equivalences that must hold
// exactly (up to float rounding) if the engine follows transformers:
// - a Mixtral / Qwen3-MoE whose experts are all one dense MLP is that dense model;
// - qwen3's per-head q/k RMSNorm makes each head's q and k scale-invariant;
// - a sliding window >= the sequence is full attention, a window of 1 sees itself only;
// - linear RoPE scaling by f = default RoPE at positions / f; dynamic NTK = default
//   RoPE with the enlarged base, once the sequence outgrows the original context;
// - router logits are the router input times the gate weight.
import test from 'ava';
import { getArchitecture, parseTensorName, tensorName } from '../core/architectures/index.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { ropeInvFreq } from '../core/model/rope.js';
import type { TensorSlot } from '../core/roles.js';
import { Rng } from '../core/rng.js';
import { golden, tempDir } from './helpers/paths.js';
import { goldenExpected, maxAbsDiff, readConfig, readTensors, writeModel, type HostTensor } from './helpers/tiny-models.js';

const LLAMA = golden('llama-tiny');
const TOL = 1e-4;
const EXPERT_ROLE = { mlp_gate: 'expert_gate', mlp_up: 'expert_up', mlp_down: 'expert_down' } as const;

/** llama-tiny's tensors renamed into another family; dense MLPs copied into every expert. */
async function fromLlama(
  family: 'mixtral' | 'qwen3' | 'qwen3_moe',
  numExperts: number,
  extra: (slot: TensorSlot) => HostTensor | undefined = () => undefined,
): Promise<Map<string, HostTensor>> {
  const src = await readTensors(LLAMA);
  const llama = getArchitecture('llama');
  const arch = getArchitecture(family);
  const rng = new Rng(7);
  const out = new Map<string, HostTensor>();
  for (const [name, t] of src) {
    const slot = parseTensorName(llama, name)!;
    if (numExperts > 0 && slot.role in EXPERT_ROLE) {
      const role = EXPERT_ROLE[slot.role as keyof typeof EXPERT_ROLE];
      for (let e = 0; e < numExperts; e++) out.set(tensorName(arch, { role, layer: slot.layer!, expert: e }), t);
      const router = Float32Array.from({ length: numExperts * 64 }, () => 0.5 * rng.normal());
      out.set(tensorName(arch, { role: 'router', layer: slot.layer! }), { shape: [numExperts, 64], data: router });
    } else {
      out.set(tensorName(arch, slot), t);
    }
    if (slot.role === 'input_norm') {
      for (const role of ['attn_q_norm', 'attn_k_norm'] as const) {
        const x = extra({ role, layer: slot.layer! });
        if (x) out.set(tensorName(arch, { role, layer: slot.layer! }), x);
      }
    }
  }
  return out;
}

function qkNorm(rng: Rng): () => HostTensor {
  return () => ({ shape: [16], data: Float32Array.from({ length: 16 }, () => 1 + 0.1 * rng.normal()) });
}

async function logitsOf(folder: string, ids: number[][], options: Parameters<CausalLM['forward']>[1] = {}) {
  const model = await CausalLM.load(folder);
  try {
    return await model.forward(ids, options);
  } finally {
    model.dispose();
  }
}

test('a Mixtral whose experts are all the same Llama MLP gives that Llama\'s logits', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const { inputIds, expected } = await goldenExpected(LLAMA);
  t.teardown(() => expected.close());
  const config = {
    ...(await readConfig(golden('mixtral-tiny'))),
    rope_theta: 10000.0,
    rms_norm_eps: 1e-5,
    num_hidden_layers: 3,
  };
  await writeModel(dir, config, await fromLlama('mixtral', 4));
  const r = await logitsOf(dir, inputIds, { outputRouterLogits: true });
  t.true(maxAbsDiff(r.logits, await expected.readFloat32('logits')) < TOL);
  t.is(r.routerLogits!.size, 3, 'every layer routed');
});

test('router logits are the router input times gate.weight^T (mixtral-tiny, by hand)', async (t) => {
  const folder = golden('mixtral-tiny');
  const { inputIds, expected } = await goldenExpected(folder);
  t.teardown(() => expected.close());
  const r = await logitsOf(folder, inputIds, { outputRouterLogits: true, outputRouterInputs: true });
  const tensors = await readTensors(folder);
  const gate = tensors.get(tensorName(getArchitecture('mixtral'), { role: 'router', layer: 1 }))!.data; // [4, 64]
  const x = r.routerInputs!.get(1)!; // [24, 64]
  const byHand = new Float32Array(24 * 4);
  for (let n = 0; n < 24; n++) for (let e = 0; e < 4; e++) {
    let s = 0;
    for (let c = 0; c < 64; c++) s += x[n * 64 + c]! * gate[e * 64 + c]!;
    byHand[n * 4 + e] = s;
  }
  t.true(maxAbsDiff(byHand, await expected.readFloat32('router_logits.1')) < 1e-5);
});

const QWEN3_CONFIG = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  vocab_size: 128,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  hidden_act: 'silu',
  max_position_embeddings: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  rope_scaling: null,
  attention_bias: false,
  tie_word_embeddings: false,
  use_sliding_window: false,
  sliding_window: null,
  torch_dtype: 'float32',
  bos_token_id: 1,
  eos_token_id: 2,
};

test('qwen3: the per-head q/k norm makes each head of q and k scale-invariant, and it matters', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const { inputIds } = await goldenExpected(LLAMA);
  const tensors = await fromLlama('qwen3', 0, qkNorm(new Rng(3)));
  const base = await logitsOf(await writeModel(dir, QWEN3_CONFIG, tensors), inputIds);

  // Scale query head 0 of layer 0 by 7 and KV head 1 of layer 1 by 0.2: rows 0..15 of q_proj, rows 16..31 of k_proj.
  const arch = getArchitecture('qwen3');
  const scaleRows = (name: string, from: number, to: number, f: number) => {
    const w = tensors.get(name)!;
    const data = w.data.slice();
    for (let i = from * 64; i < to * 64; i++) data[i]! *= f;
    tensors.set(name, { shape: w.shape, data });
  };
  scaleRows(tensorName(arch, { role: 'attn_q', layer: 0 }), 0, 16, 7);
  scaleRows(tensorName(arch, { role: 'attn_k', layer: 1 }), 16, 32, 0.2);
  const scaled = await logitsOf(await writeModel(dir, QWEN3_CONFIG, tensors), inputIds);
  t.true(maxAbsDiff(base.logits, scaled.logits) < TOL, 'per-head scale invariance');

  // Without the norm (the same weights read as llama) the outputs differ clearly.
  const { expected } = await goldenExpected(LLAMA);
  t.teardown(() => expected.close());
  t.true(maxAbsDiff(base.logits, await expected.readFloat32('logits')) > 1e-2);
});

test('qwen3_moe whose experts are all one MLP equals the dense qwen3 (norm_topk_prob true)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const { inputIds } = await goldenExpected(LLAMA);
  const dense = await logitsOf(await writeModel(dir, QWEN3_CONFIG, await fromLlama('qwen3', 0, qkNorm(new Rng(3)))), inputIds);
  const moeConfig = {
    ...QWEN3_CONFIG,
    architectures: ['Qwen3MoeForCausalLM'],
    model_type: 'qwen3_moe',
    num_experts: 4,
    num_experts_per_tok: 2,
    moe_intermediate_size: 96,
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
  };
  const moe = await logitsOf(await writeModel(dir, moeConfig, await fromLlama('qwen3_moe', 4, qkNorm(new Rng(3)))), inputIds, {
    outputRouterLogits: true,
  });
  t.is(moe.routerLogits!.size, 3);
  t.true(maxAbsDiff(dense.logits, moe.logits) < TOL);
});

test('sliding window >= sequence length is full attention; window 1 attends to itself only', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const folder = golden('mistral-tiny');
  const { inputIds, expected } = await goldenExpected(folder);
  t.teardown(() => expected.close());
  const tensors = await readTensors(folder);
  const config = await readConfig(folder);

  const wide = await logitsOf(await writeModel(dir, { ...config, sliding_window: 12 }, tensors), inputIds);
  t.true(maxAbsDiff(wide.logits, await expected.readFloat32('logits')) < TOL);

  const narrow = await logitsOf(await writeModel(dir, { ...config, sliding_window: 3 }, tensors), inputIds);
  t.true(maxAbsDiff(narrow.logits.subarray(0, 3 * 128), wide.logits.subarray(0, 3 * 128)) < 1e-6, 'first 3 positions unaffected');
  t.true(maxAbsDiff(narrow.logits, wide.logits) > 1e-3, 'later positions see fewer keys');

  // Window 1: each position is a function of its own token only (RoPE cancels when q and k share a position),
  // so it equals a batch of one-token sequences.
  const self = await logitsOf(await writeModel(dir, { ...config, sliding_window: 1 }, tensors), [inputIds[0]!]);
  const single = await logitsOf(folder, inputIds[0]!.map((id) => [id]));
  t.true(maxAbsDiff(self.logits, single.logits) < 1e-5);
});

test('linear RoPE scaling by 2 equals default RoPE at half positions', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const { inputIds } = await goldenExpected(LLAMA);
  const config = await readConfig(LLAMA);
  const linearModel = await writeModel(dir, { ...config, rope_scaling: { rope_type: 'linear', factor: 2.0 } }, await readTensors(LLAMA));
  const scaled = await logitsOf(linearModel, inputIds);
  const half = inputIds.map((row) => row.map((_, i) => i / 2));
  const reference = await logitsOf(LLAMA, inputIds, { positionIds: half });
  t.true(maxAbsDiff(scaled.logits, reference.logits) < 1e-5);
  const plain = await logitsOf(LLAMA, inputIds);
  t.true(maxAbsDiff(scaled.logits, plain.logits) > 1e-3);
});

test('dynamic NTK RoPE: default within the original context, enlarged base beyond it', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const { inputIds } = await goldenExpected(LLAMA);
  const config = await readConfig(LLAMA);
  const tensors = await readTensors(LLAMA);
  // original context 8, factor 2, 12 tokens: base = 1e4 * (2 * 12 / 8 - 1) ** (16 / 14)
  const dynamicModel = await writeModel(dir, { ...config, max_position_embeddings: 8, rope_scaling: { type: 'dynamic', factor: 2.0 } }, tensors);
  const dyn = await logitsOf(dynamicModel, inputIds);
  const short = await logitsOf(dynamicModel, inputIds.map((r) => r.slice(0, 8)));
  const { dir: dir2, cleanup: cleanup2 } = await tempDir();
  t.teardown(cleanup2);
  const bigBase = await writeModel(dir2, { ...config, rope_theta: 1e4 * 2 ** (16 / 14) }, tensors);
  const reference = await logitsOf(bigBase, inputIds);
  t.true(maxAbsDiff(dyn.logits, reference.logits) < 1e-5, 'beyond the original context');
  const plainShort = await logitsOf(LLAMA, inputIds.map((r) => r.slice(0, 8)));
  t.true(maxAbsDiff(short.logits, plainShort.logits) < 1e-6, 'within it');

  const inv = ropeInvFreq({ theta: 1e4, type: 'dynamic', factor: 2 }, 16, 12, 8);
  t.is(inv[1], Math.fround(1 / Math.fround(Math.fround(1e4 * 2 ** (16 / 14)) ** Math.fround(2 / 16))));
});

