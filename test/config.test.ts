import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normalizeConfig } from '../core/config/normalize.js';
import type { NormalizedConfig } from '../core/config/types.js';
import { isSparseLayer } from '../core/config/types.js';
import { MoeforgeError, type ErrorCode } from '../core/errors.js';
import { GOLDEN_MODELS, golden } from './helpers/paths.js';

function raw(model: (typeof GOLDEN_MODELS)[number]): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(golden(model), 'config.json'), 'utf8')) as Record<string, unknown>;
}

/** The same config as transformers v5 writes it: dtype, rope_parameters, head_dim null, layer_types. */
function toV5(v4: Record<string, unknown>): Record<string, unknown> {
  const { torch_dtype, rope_theta, rope_scaling, head_dim, ...rest } = v4;
  void head_dim;
  const scaling = (rope_scaling ?? {}) as Record<string, unknown>;
  return {
    ...rest,
    dtype: torch_dtype,
    head_dim: null,
    rope_parameters: { rope_type: 'default', ...scaling, rope_theta },
    layer_types: Array.from({ length: v4.num_hidden_layers as number }, () => 'full_attention'),
    transformers_version: '5.18.0',
  };
}

function withoutRaw(c: NormalizedConfig): Omit<NormalizedConfig, 'raw'> {
  const { raw: _raw, ...rest } = c;
  void _raw;
  return rest;
}

function expectError(t: import('ava').ExecutionContext, input: unknown, code: ErrorCode, line: string): void {
  const e = t.throws(() => normalizeConfig(input, 'config.json'), { instanceOf: MoeforgeError });
  t.is(e.code, code);
  t.is(e.toLine(), line);
  t.false(e.toLine().includes('\n'));
}

const LLAMA = {
  model_type: 'llama',
  vocab_size: 128,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
};

for (const model of GOLDEN_MODELS) {
  test(`${model}: the v5 spelling normalises to the same config as v4`, (t) => {
    const v4 = normalizeConfig(raw(model), 'config.json');
    const v5 = normalizeConfig(toV5(raw(model)), 'config.json');
    t.deepEqual(withoutRaw(v5), withoutRaw(v4));
    t.is(v5.raw['transformers_version'], '5.18.0');
  });
}

test('golden values: llama3 rope, bf16, tied qwen2 with biases, qwen2_moe sparse layers', (t) => {
  const l3 = normalizeConfig(raw('llama-tiny-rope-llama3'), 'config.json');
  t.deepEqual(l3.rope, { theta: 10000, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 });
  t.is(l3.maxPositionEmbeddings, 512);
  t.is(normalizeConfig(raw('llama-tiny-bf16'), 'config.json').torchDtype, 'bfloat16');
  const q = normalizeConfig(raw('qwen2-tiny'), 'config.json');
  t.like(q, { tieWordEmbeddings: true, attentionBias: true, attentionOutBias: false, rmsNormEps: 1e-6, headDim: 16 });
  t.deepEqual(q.rope, { theta: 1e6, type: 'default' });
  const mix = normalizeConfig(raw('mixtral-tiny'), 'config.json');
  t.deepEqual(mix.moe, {
    numExperts: 4,
    expertsPerToken: 2,
    expertIntermediateSize: 96,
    normTopkProb: true,
    sharedExpertIntermediateSize: null,
    decoderSparseStep: 1,
    mlpOnlyLayers: [],
    routerAuxLossCoef: 0.001,
  });
  const mixed = normalizeConfig(raw('qwen2moe-tiny-mixed'), 'config.json');
  t.like(mixed.moe, { numExperts: 4, expertsPerToken: 2, expertIntermediateSize: 48, sharedExpertIntermediateSize: 96, normTopkProb: true, mlpOnlyLayers: [1] });
  t.deepEqual([0, 1, 2].map((i) => isSparseLayer(mixed, i)), [true, false, true]);
  t.false(normalizeConfig(raw('qwen2moe-tiny'), 'config.json').moe!.normTopkProb);
});

test('unknown keys are allowed and kept in raw', (t) => {
  const c = normalizeConfig({ ...LLAMA, quantization_config: { bits: 4 }, _name_or_path: 'x' }, 'config.json');
  t.deepEqual(c.raw['quantization_config'], { bits: 4 });
});

test('defaults follow the transformers config classes', (t) => {
  const llama = normalizeConfig({ ...LLAMA, num_key_value_heads: null }, 'config.json');
  t.like(llama, { numKvHeads: 4, headDim: 16, rmsNormEps: 1e-6, maxPositionEmbeddings: 2048, torchDtype: 'float32', tieWordEmbeddings: false, bosTokenId: 1, eosTokenId: 2 });
  t.deepEqual(llama.rope, { theta: 10000, type: 'default' });
  // Qwen3Config defaults head_dim to 128 when the key is absent; v5's null means hidden / heads.
  t.is(normalizeConfig({ ...LLAMA, model_type: 'qwen3' }, 'config.json').headDim, 128);
  t.is(normalizeConfig({ ...LLAMA, model_type: 'qwen3', head_dim: null }, 'config.json').headDim, 16);
  t.like(normalizeConfig({ ...LLAMA, model_type: 'qwen3' }, 'config.json'), { qkNorm: true, attentionBias: false });
  const mix = normalizeConfig({ ...LLAMA, model_type: 'mixtral' }, 'config.json');
  t.like(mix.moe, { numExperts: 8, expertsPerToken: 2 });
  t.is(mix.rope.theta, 1e6);
  t.like(normalizeConfig({ ...LLAMA, model_type: 'qwen2_moe' }, 'config.json').moe, {
    numExperts: 60,
    expertsPerToken: 4,
    expertIntermediateSize: 1408,
    sharedExpertIntermediateSize: 5632,
    normTopkProb: false,
  });
  t.like(normalizeConfig({ ...LLAMA, model_type: 'qwen3_moe' }, 'config.json').moe, { numExperts: 128, expertsPerToken: 8, sharedExpertIntermediateSize: null });
  t.deepEqual(normalizeConfig({ ...LLAMA, eos_token_id: [2, 7] }, 'config.json').eosTokenId, [2, 7]);
});

test('rope: legacy `type`, linear and dynamic factors, v5 rope_parameters with llama3', (t) => {
  t.deepEqual(normalizeConfig({ ...LLAMA, rope_scaling: { type: 'linear', factor: 2 } }, 'config.json').rope, { theta: 10000, type: 'linear', factor: 2 });
  t.deepEqual(normalizeConfig({ ...LLAMA, rope_theta: 5e5, rope_scaling: { rope_type: 'dynamic', factor: 4 } }, 'config.json').rope, {
    theta: 5e5,
    type: 'dynamic',
    factor: 4,
  });
  const v5 = normalizeConfig(
    {
      ...LLAMA,
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    },
    'config.json',
  );
  t.deepEqual(v5.rope, { theta: 500000, type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
});

test('sliding windows: mistral everywhere; qwen2 only with use_sliding_window, from max_window_layers; v5 layer_types', (t) => {
  t.deepEqual(normalizeConfig({ ...LLAMA, model_type: 'mistral', sliding_window: 4096 }, 'config.json').slidingWindows, [4096, 4096, 4096]);
  t.deepEqual(normalizeConfig({ ...LLAMA, model_type: 'mistral', sliding_window: null }, 'config.json').slidingWindows, [null, null, null]);
  // MistralConfig's default when the key is absent (Mistral-7B-v0.1 era).
  t.deepEqual(normalizeConfig({ ...LLAMA, model_type: 'mistral' }, 'config.json').slidingWindows, [4096, 4096, 4096]);
  const qwen = { ...LLAMA, model_type: 'qwen2', sliding_window: 32, max_window_layers: 1 };
  t.deepEqual(normalizeConfig({ ...qwen, use_sliding_window: false }, 'config.json').slidingWindows, [null, null, null]);
  const v4 = normalizeConfig({ ...qwen, use_sliding_window: true }, 'config.json');
  t.deepEqual(v4.slidingWindows, [null, 32, 32]);
  const v5 = normalizeConfig(
    { ...qwen, use_sliding_window: true, max_window_layers: 3, layer_types: ['full_attention', 'sliding_attention', 'sliding_attention'] },
    'config.json',
  );
  t.deepEqual(v5.slidingWindows, [null, 32, 32]);
  t.deepEqual(normalizeConfig({ ...LLAMA, model_type: 'qwen3_moe', use_sliding_window: true, sliding_window: 8, max_window_layers: 2 }, 'config.json').slidingWindows, [
    null,
    null,
    8,
  ]);
});

test('unknown model_type and unsupported features are unknown_architecture', (t) => {
  expectError(
    t,
    { ...LLAMA, model_type: 'gpt2' },
    'unknown_architecture',
    'error[unknown_architecture]: config.json: model_type "gpt2" is not supported (supported: llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe)',
  );
  expectError(
    t,
    { ...LLAMA, rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] } },
    'unknown_architecture',
    'error[unknown_architecture]: config.json: rope type "mrope" is not supported (supported: default, linear, dynamic, llama3)',
  );
  expectError(
    t,
    { ...LLAMA, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4, factor: 4 } },
    'unknown_architecture',
    'error[unknown_architecture]: config.json: rope type "yarn" is not supported (supported: default, linear, dynamic, llama3)',
  );
  expectError(t, { ...LLAMA, hidden_act: 'gelu' }, 'unknown_architecture', 'error[unknown_architecture]: config.json: hidden_act "gelu" is not supported (only silu)');
});

test('bad values are invalid_config naming the file and the field', (t) => {
  expectError(t, { ...LLAMA, num_attention_heads: 'x' }, 'invalid_config', 'error[invalid_config]: config.json: num_attention_heads: expected a positive integer, got "x"');
  expectError(t, { ...LLAMA, hidden_size: 64.5 }, 'invalid_config', 'error[invalid_config]: config.json: hidden_size: expected a positive integer, got 64.5');
  expectError(t, { ...LLAMA, num_hidden_layers: 0 }, 'invalid_config', 'error[invalid_config]: config.json: num_hidden_layers: expected a positive integer, got 0');
  const { vocab_size: _v, ...noVocab } = LLAMA;
  void _v;
  expectError(t, noVocab, 'invalid_config', 'error[invalid_config]: config.json: vocab_size: expected a positive integer, got nothing');
  expectError(t, { ...LLAMA, torch_dtype: 'float64' }, 'invalid_config', 'error[invalid_config]: config.json: torch_dtype: expected one of float32, bfloat16, float16, got "float64"');
  expectError(t, { ...LLAMA, rope_scaling: { rope_type: 'linear', factor: 'big' } }, 'invalid_config', 'error[invalid_config]: config.json: rope_scaling.factor: expected a positive number, got "big"');
  expectError(t, { ...LLAMA, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'invalid_config', 'error[invalid_config]: config.json: rope_scaling.low_freq_factor: missing: rope type llama3 needs it');
  expectError(t, { ...LLAMA, num_key_value_heads: 3 }, 'invalid_config', 'error[invalid_config]: config.json: num_key_value_heads: must divide num_attention_heads (4), got 3');
  expectError(t, { ...LLAMA, tie_word_embeddings: 'yes' }, 'invalid_config', 'error[invalid_config]: config.json: tie_word_embeddings: expected true or false, got "yes"');
  expectError(t, { ...LLAMA, model_type: 'mixtral', num_local_experts: 4, num_experts_per_tok: 5 }, 'invalid_config', 'error[invalid_config]: config.json: num_experts_per_tok: must be at most num_local_experts (4), got 5');
  expectError(t, { ...LLAMA, model_type: 'qwen2_moe', mlp_only_layers: [3] }, 'invalid_config', 'error[invalid_config]: config.json: mlp_only_layers: layer 3 does not exist (num_hidden_layers is 3)');
  expectError(t, { ...LLAMA, model_type: 'qwen2_moe', mlp_only_layers: [0, -1] }, 'invalid_config', 'error[invalid_config]: config.json: mlp_only_layers.1: expected a non-negative integer, got -1');
  expectError(t, { ...LLAMA, layer_types: ['full_attention'] }, 'invalid_config', 'error[invalid_config]: config.json: layer_types: expected 3 entries (num_hidden_layers), got 1');
  expectError(t, { ...LLAMA, torch_dtype: 'float32', dtype: 'bfloat16' }, 'invalid_config', 'error[invalid_config]: config.json: dtype: disagrees with torch_dtype (float32), got "bfloat16"');
  expectError(t, { ...LLAMA, model_type: undefined }, 'invalid_config', 'error[invalid_config]: config.json: model_type: missing: cannot tell the architecture');
  expectError(t, [1, 2], 'invalid_config', 'error[invalid_config]: config.json: expected a JSON object, got [1,2]');
});
