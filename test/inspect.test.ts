import test from 'ava';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { formatSummary, summarizeFolder, summarizeModel } from '../core/inspect.js';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { MoeforgeError } from '../core/errors.js';
import { expectedTensors } from '../core/architectures/index.js';
import { normalizeConfig } from '../core/config/normalize.js';
import { GOLDEN_MODELS, golden, tempDir } from './helpers/paths.js';

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** Everything inspect needs for a golden folder, read here with plain fs (independent of core/). */
function load(model: (typeof GOLDEN_MODELS)[number]) {
  const dir = golden(model);
  const file = path.join(dir, 'model.safetensors');
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Header;
  delete header['__metadata__'];
  return {
    header,
    input: {
      rawConfig: JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>,
      tensors: new Map(Object.entries(header).map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }])),
      files: [{ name: 'model.safetensors', bytes: statSync(file).size }],
      label: path.join(dir, 'config.json'),
    },
  };
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

test('mixtral-tiny: model_type, experts, parameter count = sum of element counts, active < total', (t) => {
  const { header, input } = load('mixtral-tiny');
  const s = summarizeModel(input);
  t.is(s.modelType, 'mixtral');
  t.is(s.architecture, 'MixtralForCausalLM');
  t.is(s.experts, 4);
  t.is(s.expertsPerToken, 2);
  t.deepEqual(s.sparseLayers, [0, 1]);
  t.like(s, { layers: 2, hiddenSize: 64, heads: 4, kvHeads: 2, headDim: 16, vocabSize: 128, intermediateSize: 96 });
  const total = Object.values(header).reduce((a, h) => a + numel(h.shape), 0);
  t.is(s.parameters.total, total);
  // F32 data bytes = 4 × elements; the file adds its 8-byte length prefix and header.
  t.is(s.dtypeBytes['F32'], 4 * total);
  t.is(s.dtypes['F32'], Object.keys(header).length);
  // Hand count: per layer 4 experts × 3 × 96 × 64; a token uses 2 of them.
  const perExpert = 3 * 96 * 64;
  t.is(s.parameters.activePerToken, total - 2 * 2 * perExpert);
  t.true(s.parameters.activePerToken! < total);
  t.is(s.shards, 1);
  t.is(s.bytesOnDisk, 761552);
  t.deepEqual(s.problems, []);
});

test('qwen2moe-tiny-mixed: sparse layers [0, 2], the dense layer counts fully, shared expert always active', (t) => {
  const { header, input } = load('qwen2moe-tiny-mixed');
  const s = summarizeModel(input);
  t.deepEqual(s.sparseLayers, [0, 2]);
  t.is(s.sharedExpertIntermediateSize, 96);
  t.is(s.expertIntermediateSize, 48);
  const total = Object.values(header).reduce((a, h) => a + numel(h.shape), 0);
  t.is(s.parameters.total, total);
  // Two sparse layers, each with 4 − 2 unused experts of 3 × 48 × 64.
  t.is(s.parameters.activePerToken, total - 2 * 2 * 3 * 48 * 64);
  t.deepEqual(s.problems, []);
});

for (const model of GOLDEN_MODELS) {
  test(`${model} inspects without problems`, (t) => {
    const s = summarizeModel(load(model).input);
    t.deepEqual(s.problems, []);
    t.is(s.experts === undefined, !['mixtral-tiny', 'qwen2moe-tiny', 'qwen2moe-tiny-mixed'].includes(model));
  });
}

test('llama-tiny-bf16: dtype histogram and bytes', (t) => {
  const { header, input } = load('llama-tiny-bf16');
  const s = summarizeModel(input);
  const total = Object.values(header).reduce((a, h) => a + numel(h.shape), 0);
  t.deepEqual(s.dtypes, { BF16: Object.keys(header).length });
  t.deepEqual(s.dtypeBytes, { BF16: 2 * total });
  t.is(s.parameters.activePerToken, undefined);
  t.is(s.torchDtype, 'bfloat16');
});

test('formatSummary: aligned key: value lines, MoE facts, problems listed', (t) => {
  const { input } = load('mixtral-tiny');
  input.tensors.delete('model.layers.1.block_sparse_moe.experts.3.w2.weight');
  input.files.push({ name: 'config.json', bytes: 752 });
  const s = summarizeModel(input);
  t.is(s.shards, 1);
  t.is(s.bytesOnDisk, 761552 + 752);
  const text = formatSummary(s);
  const lines = text.split('\n');
  t.is(lines[0], 'model_type:        mixtral');
  t.true(lines.includes('experts:           4 (2 per token)'));
  t.true(lines.includes('heads / kv heads:  4 / 2'));
  t.true(lines.includes('problems:          1 error(s), 0 warning(s)'));
  t.is(lines.at(-1), '  error missing: model.layers.1.block_sparse_moe.experts.3.w2.weight: missing tensor, expected shape [64, 96]');
  // Every key: value line has its value in the same column.
  const column = lines[0]!.indexOf('mixtral');
  for (const line of lines.filter((l) => !l.startsWith('  '))) t.is(line[column - 1], ' ', line);
  t.regex(text, /parameters: +\d+ \([\d.]+K\), active per token \d+ \([\d.]+K\)/);
});

test('summarizeModel surfaces config errors as they are', (t) => {
  const { input } = load('llama-tiny');
  const e = t.throws(() => summarizeModel({ ...input, rawConfig: { ...input.rawConfig, model_type: 'bert' } }), { instanceOf: MoeforgeError });
  t.is(e.code, 'unknown_architecture');
  t.is(e.path, input.label);
});

test('summarizeFolder: a sharded synthetic folder counts its shards and bytes', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-inspect-');
  t.teardown(cleanup);
  const folder = path.join(dir, 'm');
  await writeSyntheticModel(folder, { hiddenSize: 32, intermediateSize: 48, numLayers: 2, vocabSize: 64, numHeads: 4, numKvHeads: 2, seed: 1, shardSizeBytes: 20_000 });
  const s = await summarizeFolder(folder);
  const entries = readdirSync(folder);
  const shards = entries.filter((f) => f.endsWith('.safetensors'));
  t.true(shards.length > 1);
  t.is(s.shards, shards.length);
  t.is(s.bytesOnDisk, entries.reduce((a, f) => a + statSync(path.join(folder, f)).size, 0));
  t.is(s.parameters.total, 2 * 64 * 32 + 32 + 2 * (2 * 32 + 2 * 32 * 32 + 2 * 16 * 32 + 3 * 32 * 48));
  t.deepEqual(s.problems, []);

  const mixtral = await summarizeFolder(golden('mixtral-tiny'));
  t.is(mixtral.shards, 1); // expected.safetensors beside it is not a shard
  t.is(mixtral.bytesOnDisk, 761552 + 752);
});

test('Mixtral-8x7B shapes: 46.7B total, 12.9B active per token', (t) => {
  const rawConfig = {
    model_type: 'mixtral',
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    num_local_experts: 8,
    num_experts_per_tok: 2,
    torch_dtype: 'bfloat16',
  };
  const tensors = new Map(expectedTensors(normalizeConfig(rawConfig, 'config.json')).map((e) => [e.name, { dtype: 'BF16', shape: e.shape }]));
  const s = summarizeModel({ rawConfig, tensors, files: [], label: 'config.json' });
  t.is(s.parameters.total, 46702792704);
  t.is(s.parameters.activePerToken, 12879925248);
  t.is(s.dtypeBytes['BF16'], 2 * 46702792704);
});
