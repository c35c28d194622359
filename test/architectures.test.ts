import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ARCHITECTURES,
  defineArchitecture,
  expectedTensors,
  getArchitecture,
  parseTensorName,
  tensorName,
  validateTensors,
} from '../core/architectures/index.js';
import { normalizeConfig } from '../core/config/normalize.js';
import { MoeforgeError } from '../core/errors.js';
import { GOLDEN_MODELS, golden } from './helpers/paths.js';

/** The tensor table of a golden's model.safetensors, read straight from its JSON header. */
function goldenHeader(name: string): { names: string[]; tensors: Map<string, { dtype: string; shape: number[] }> } {
  const buf = readFileSync(path.join(golden(name as (typeof GOLDEN_MODELS)[number]), 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
  delete header['__metadata__'];
  return { names: Object.keys(header), tensors: new Map(Object.entries(header).map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }])) };
}

function goldenConfig(name: string) {
  const file = path.join(golden(name as (typeof GOLDEN_MODELS)[number]), 'config.json');
  return normalizeConfig(JSON.parse(readFileSync(file, 'utf8')), file);
}

for (const model of GOLDEN_MODELS) {
  test(`${model}: every tensor maps to a slot and back, the expected list is the file's, no problems`, (t) => {
    const config = goldenConfig(model);
    const arch = getArchitecture(config.modelType);
    const { names, tensors } = goldenHeader(model);
    for (const name of names) {
      const slot = parseTensorName(arch, name);
      t.truthy(slot, `${name} has no role`);
      t.is(tensorName(arch, slot!), name);
    }
    const expected = expectedTensors(config);
    // Same names in the same (sorted) order as the file, and the same shapes.
    t.deepEqual(
      expected.map((e) => e.name),
      names,
    );
    for (const e of expected) t.deepEqual(e.shape, tensors.get(e.name)!.shape, e.name);
    t.deepEqual(validateTensors(config, tensors), []);
  });
}

test('mixtral names: w1/w2/w3 are gate/down/up of an expert, gate.weight the router', (t) => {
  const arch = getArchitecture('mixtral');
  t.deepEqual(parseTensorName(arch, 'model.layers.1.block_sparse_moe.experts.3.w1.weight'), { role: 'expert_gate', layer: 1, expert: 3 });
  t.deepEqual(parseTensorName(arch, 'model.layers.0.block_sparse_moe.experts.2.w2.weight'), { role: 'expert_down', layer: 0, expert: 2 });
  t.deepEqual(parseTensorName(arch, 'model.layers.0.block_sparse_moe.experts.2.w3.weight'), { role: 'expert_up', layer: 0, expert: 2 });
  t.deepEqual(parseTensorName(arch, 'model.layers.12.block_sparse_moe.gate.weight'), { role: 'router', layer: 12 });
  t.is(tensorName(arch, { role: 'expert_up', layer: 10, expert: 7 }), 'model.layers.10.block_sparse_moe.experts.7.w3.weight');
  // Dense FFN names are not Mixtral names, nor are leading zeros or junk around a name.
  t.is(parseTensorName(arch, 'model.layers.0.mlp.up_proj.weight'), undefined);
  t.is(parseTensorName(arch, 'model.layers.01.input_layernorm.weight'), undefined);
  t.is(parseTensorName(arch, 'model.layers.0.input_layernorm.weight.x'), undefined);
  t.is(parseTensorName(arch, 'model.layers.0.self_attn.rotary_emb.inv_freq'), undefined);
});

test('qwen2_moe names: shared expert and its sigmoid gate', (t) => {
  const arch = getArchitecture('qwen2_moe');
  t.deepEqual(parseTensorName(arch, 'model.layers.4.mlp.shared_expert_gate.weight'), { role: 'shared_expert_gate', layer: 4 });
  t.deepEqual(parseTensorName(arch, 'model.layers.4.mlp.shared_expert.down_proj.weight'), { role: 'shared_expert_down', layer: 4 });
  t.deepEqual(parseTensorName(arch, 'model.layers.4.mlp.gate.weight'), { role: 'router', layer: 4 });
  t.deepEqual(parseTensorName(arch, 'model.layers.4.mlp.gate_proj.weight'), { role: 'mlp_gate', layer: 4 });
});

test('tensorName refuses a role the family lacks (unknown_architecture)', (t) => {
  const e = t.throws(() => tensorName(getArchitecture('llama'), { role: 'router', layer: 0 }), { instanceOf: MoeforgeError });
  t.is(e.code, 'unknown_architecture');
  t.is(e.message, 'llama has no router tensor');
});

test('getArchitecture: an unknown family is unknown_architecture', (t) => {
  t.is(Object.keys(ARCHITECTURES).length, 7);
  const e = t.throws(() => getArchitecture('gpt2'), { instanceOf: MoeforgeError });
  t.is(e.code, 'unknown_architecture');
  t.regex(e.message, /^model_type "gpt2" is not supported/);
});

test('architecture specs are validated strictly: unknown roles and wrong placeholders fail', (t) => {
  t.throws(() => defineArchitecture({ family: 'llama', hfArchitecture: 'LlamaForCausalLM', names: { mlp_upp: 'x.{layer}' } as never }), {
    message: /mlp_upp/,
  });
  t.throws(() => defineArchitecture({ family: 'llama', hfArchitecture: 'LlamaForCausalLM', names: { mlp_up: 'model.mlp.up.weight' } }), {
    message: /wrong placeholders/,
  });
  t.throws(
    () => defineArchitecture({ family: 'llama', hfArchitecture: 'LlamaForCausalLM', names: { expert_up: 'model.layers.{layer}.up' } }),
    { message: /wrong placeholders/ },
  );
  t.throws(() => defineArchitecture({ family: 'llama', hfArchitecture: 'Llama', names: {} }), { message: /hfArchitecture/ });
});

test('validateTensors reports a missing tensor, a wrong shape, an extra tensor and a non-float dtype', (t) => {
  const config = goldenConfig('llama-tiny');
  const { tensors } = goldenHeader('llama-tiny');
  tensors.delete('model.layers.1.mlp.up_proj.weight');
  tensors.set('model.layers.0.self_attn.k_proj.weight', { dtype: 'F32', shape: [64, 64] });
  tensors.set('model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [8] });
  tensors.set('model.norm.weight', { dtype: 'I64', shape: [64] });
  const problems = validateTensors(config, tensors);
  t.deepEqual(
    problems.map((p) => [p.kind, p.tensor, p.severity]),
    [
      ['shape', 'model.layers.0.self_attn.k_proj.weight', 'error'],
      ['missing', 'model.layers.1.mlp.up_proj.weight', 'error'],
      ['dtype', 'model.norm.weight', 'error'],
      ['extra', 'model.layers.0.self_attn.rotary_emb.inv_freq', 'warning'],
    ],
  );
  t.is(problems[0]!.message, 'expected shape [32, 64], got [64, 64]');
  t.is(problems[1]!.message, 'missing tensor, expected shape [96, 64]');
  t.is(problems[2]!.message, 'stored as I64, expected a floating-point dtype');
});

test('tied embeddings: no lm_head expected; a stored one is an ignored extra; untied without it is missing', (t) => {
  const tied = goldenConfig('qwen2-tiny');
  t.false(expectedTensors(tied).some((e) => e.name === 'lm_head.weight'));
  const { tensors } = goldenHeader('qwen2-tiny');
  tensors.set('lm_head.weight', { dtype: 'F32', shape: [128, 64] });
  const problems = validateTensors(tied, tensors);
  t.is(problems.length, 1);
  t.like(problems[0], { kind: 'extra', tensor: 'lm_head.weight', severity: 'warning' });
  t.regex(problems[0]!.message, /tie_word_embeddings is true/);

  const untied = goldenConfig('llama-tiny');
  const llama = goldenHeader('llama-tiny').tensors;
  llama.delete('lm_head.weight');
  t.deepEqual(validateTensors(untied, llama), [
    {
      kind: 'missing',
      tensor: 'lm_head.weight',
      message: 'missing tensor, expected shape [128, 64] (tie_word_embeddings is false)',
      severity: 'error',
    },
  ]);
});

test('qwen3: q_norm/k_norm of head_dim, head_dim independent of hidden/heads; qwen3_moe experts + dense layers', (t) => {
  const base = {
    model_type: 'qwen3',
    vocab_size: 100,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    tie_word_embeddings: true,
  };
  const qwen3 = expectedTensors(normalizeConfig(base, 'config.json'));
  const byName = new Map(qwen3.map((e) => [e.name, e.shape]));
  t.deepEqual(byName.get('model.layers.1.self_attn.q_norm.weight'), [16]);
  t.deepEqual(byName.get('model.layers.1.self_attn.q_proj.weight'), [64, 32]);
  t.deepEqual(byName.get('model.layers.1.self_attn.k_proj.weight'), [32, 32]);
  t.deepEqual(byName.get('model.layers.1.self_attn.o_proj.weight'), [32, 64]);
  t.false(byName.has('model.layers.1.self_attn.q_proj.bias'));
  // 2 globals (tied) + per layer 2 norms + 4 attn + 2 qk norms + 3 mlp.
  t.is(qwen3.length, 2 + 2 * 11);

  const moe = normalizeConfig(
    { ...base, model_type: 'qwen3_moe', num_experts: 3, num_experts_per_tok: 2, moe_intermediate_size: 8, mlp_only_layers: [0] },
    'config.json',
  );
  const names = expectedTensors(moe).map((e) => e.name);
  t.true(names.includes('model.layers.0.mlp.up_proj.weight'));
  t.false(names.includes('model.layers.0.mlp.gate.weight'));
  t.true(names.includes('model.layers.1.mlp.gate.weight'));
  t.true(names.includes('model.layers.1.mlp.experts.2.down_proj.weight'));
  t.false(names.some((n) => n.includes('shared_expert')));
  t.deepEqual(expectedTensors(moe).find((e) => e.name === 'model.layers.1.mlp.experts.2.down_proj.weight')!.shape, [32, 8]);
});

test('llama attention_bias: q/k/v and o_proj biases', (t) => {
  const config = normalizeConfig(
    { model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, attention_bias: true },
    'config.json',
  );
  const shapes = Object.fromEntries(expectedTensors(config).map((e) => [e.name, e.shape]));
  t.deepEqual(shapes['model.layers.0.self_attn.q_proj.bias'], [8]);
  t.deepEqual(shapes['model.layers.0.self_attn.k_proj.bias'], [4]);
  t.deepEqual(shapes['model.layers.0.self_attn.o_proj.bias'], [8]);
  t.deepEqual(parseTensorName(getArchitecture('llama'), 'model.layers.0.self_attn.o_proj.bias'), { role: 'attn_o_bias', layer: 0 });
});

// Published models' sizes (the parameter counts the Hub shows from their safetensors): the
// expected shapes of a full-size config must add up to them exactly.
const PUBLISHED: [string, Record<string, unknown>, number][] = [
  [
    'Llama-3.1-8B',
    { model_type: 'llama', vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, rope_theta: 500000.0, rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' } },
    8030261248,
  ],
  ['Mistral-7B-v0.1', { model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, sliding_window: 4096 }, 7241732096],
  [
    'Mixtral-8x7B-v0.1',
    { model_type: 'mixtral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, num_local_experts: 8, num_experts_per_tok: 2 },
    46702792704,
  ],
  ['Qwen2.5-7B', { model_type: 'qwen2', vocab_size: 152064, hidden_size: 3584, intermediate_size: 18944, num_hidden_layers: 28, num_attention_heads: 28, num_key_value_heads: 4, tie_word_embeddings: false }, 7615616512],
  [
    'Qwen1.5-MoE-A2.7B',
    { model_type: 'qwen2_moe', vocab_size: 151936, hidden_size: 2048, intermediate_size: 5632, moe_intermediate_size: 1408, shared_expert_intermediate_size: 5632, num_experts: 60, num_experts_per_tok: 4, num_hidden_layers: 24, num_attention_heads: 16, num_key_value_heads: 16 },
    14315784192,
  ],
  ['Qwen3-8B', { model_type: 'qwen3', vocab_size: 151936, hidden_size: 4096, intermediate_size: 12288, num_hidden_layers: 36, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, tie_word_embeddings: false }, 8190735360],
  [
    'Qwen3-30B-A3B',
    { model_type: 'qwen3_moe', vocab_size: 151936, hidden_size: 2048, intermediate_size: 6144, moe_intermediate_size: 768, num_experts: 128, num_experts_per_tok: 8, num_hidden_layers: 48, num_attention_heads: 32, num_key_value_heads: 4, head_dim: 128 },
    30532122624,
  ],
];

for (const [name, raw, count] of PUBLISHED) {
  test(`${name}: expected shapes add up to the published ${count} parameters`, (t) => {
    const tensors = expectedTensors(normalizeConfig(raw, `${name}/config.json`));
    t.is(
      tensors.reduce((a, e) => a + e.shape.reduce((x, y) => x * y, 1), 0),
      count,
    );
  });
}
