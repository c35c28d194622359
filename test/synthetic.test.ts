import test from 'ava';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { validateTensors } from '../core/architectures/index.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { normalizeConfig } from '../core/config/normalize.js';
import { MoeforgeError } from '../core/errors.js';
import { syntheticConfig, writeSyntheticModel, type SyntheticModelOptions } from '../benchmarks/synthetic/dense-model.js';
import { addNormalFast, fillNormalFast, inverseNormalCdf } from '../benchmarks/synthetic/fast-normal.js';
import { optionsForBytes, syntheticParameterCount } from '../benchmarks/synthetic/sizes.js';
import { Rng } from '../core/rng.js';
import { tempDir } from './helpers/paths.js';

const SMALL: SyntheticModelOptions = { hiddenSize: 32, intermediateSize: 48, numLayers: 2, vocabSize: 64, numHeads: 4, numKvHeads: 2, seed: 1 };

async function withTemp(t: import('ava').ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir('moeforge-synth-');
  t.teardown(cleanup);
  return dir;
}

/** Byte equality without ava's deep diff (slow on large buffers). */
function same(a: Uint8Array | Float32Array, b: Uint8Array | Float32Array): boolean {
  const bytes = (x: Uint8Array | Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return bytes(a).equals(bytes(b));
}

function stats(values: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of values) s += v;
  const mean = s / values.length;
  let q = 0;
  for (const v of values) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / values.length) };
}

for (const family of ['llama', 'mistral', 'qwen2', 'qwen3'] as const) {
  test(`${family}: a synthetic model normalises and validates without problems`, async (t) => {
    const folder = path.join(await withTemp(t), 'model');
    const options = { ...SMALL, family, tieWordEmbeddings: family === 'qwen2' };
    await writeSyntheticModel(folder, options);
    const ckpt = await Checkpoint.open(folder);
    t.teardown(() => ckpt.close());
    const config = normalizeConfig(ckpt.rawConfig, path.join(folder, 'config.json'));
    t.is(config.modelType, family);
    t.deepEqual(ckpt.rawConfig, syntheticConfig(options));
    t.deepEqual(validateTensors(config, ckpt.headers()), []);
    t.is(ckpt.has('lm_head.weight'), family !== 'qwen2');
    t.is(ckpt.has('model.layers.1.self_attn.q_proj.bias'), family === 'qwen2');
    t.is(ckpt.has('model.layers.1.self_attn.k_norm.weight'), family === 'qwen3');
  });
}

test('values: norms 1 + 0.1 z, weights scale · z, deterministic per seed and independent of sharding', async (t) => {
  const dir = await withTemp(t);
  await writeSyntheticModel(path.join(dir, 'a'), { ...SMALL, vocabSize: 4096, scale: 0.05 });
  await writeSyntheticModel(path.join(dir, 'b'), { ...SMALL, vocabSize: 4096, scale: 0.05, shardSizeBytes: 200_000 });
  await writeSyntheticModel(path.join(dir, 'c'), { ...SMALL, vocabSize: 4096, scale: 0.05, seed: 2 });
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((x) => Checkpoint.open(path.join(dir, x))));
  t.teardown(() => Promise.all([a!.close(), b!.close(), c!.close()]));

  const embed = await a!.readFloat32('model.embed_tokens.weight'); // 131072 values
  const e = stats(embed);
  t.true(Math.abs(e.mean) < 0.001, `mean ${e.mean}`);
  t.true(Math.abs(e.std - 0.05) < 0.001, `std ${e.std}`);
  const norm = stats(await a!.readFloat32('model.layers.0.input_layernorm.weight'));
  t.true(Math.abs(norm.mean - 1) < 0.06 && norm.std > 0.05 && norm.std < 0.15, JSON.stringify(norm));

  t.true((await readdir(path.join(dir, 'b'))).includes('model.safetensors.index.json'));
  t.true(b!.files.length > 1);
  t.deepEqual(b!.names().sort(), a!.names().sort());
  for (const name of a!.names()) t.true(same(await b!.readRaw(name), await a!.readRaw(name)), name);
  t.notDeepEqual(await c!.readFloat32('model.embed_tokens.weight'), embed);

  await writeSyntheticModel(path.join(dir, 'a2'), { ...SMALL, vocabSize: 4096, scale: 0.05 });
  t.true(same(await readFile(path.join(dir, 'a2', 'model.safetensors')), await readFile(path.join(dir, 'a', 'model.safetensors'))));
});

test('BF16 and F16 models store that dtype and say so in config.json', async (t) => {
  const dir = await withTemp(t);
  for (const dtype of ['BF16', 'F16'] as const) {
    await writeSyntheticModel(path.join(dir, dtype), { ...SMALL, dtype });
    const ckpt = await Checkpoint.open(path.join(dir, dtype));
    t.teardown(() => ckpt.close());
    t.deepEqual(new Set([...ckpt.headers().values()].map((h) => h.dtype)), new Set([dtype]));
    t.is(normalizeConfig(ckpt.rawConfig, 'config.json').torchDtype, dtype === 'BF16' ? 'bfloat16' : 'float16');
  }
});

test('perturb: same shapes, noise of the given scale on linear roles only, deterministic for a seed', async (t) => {
  const dir = await withTemp(t);
  const base = path.join(dir, 'base');
  await writeSyntheticModel(base, SMALL);
  await writeSyntheticModel(path.join(dir, 'x1'), { ...SMALL, perturb: { from: base, scale: 0.01, seed: 7 } });
  await writeSyntheticModel(path.join(dir, 'x1again'), { ...SMALL, perturb: { from: base, scale: 0.01, seed: 7 } });
  await writeSyntheticModel(path.join(dir, 'x2'), { ...SMALL, perturb: { from: base, scale: 0.01, seed: 8 } });
  await writeSyntheticModel(path.join(dir, 'up'), { ...SMALL, perturb: { from: base, scale: 0.01, seed: 7, roles: ['mlp_up'] } });
  const [b, x1, x2, up] = await Promise.all(['base', 'x1', 'x2', 'up'].map((x) => Checkpoint.open(path.join(dir, x))));
  t.teardown(() => Promise.all([b!.close(), x1!.close(), x2!.close(), up!.close()]));

  t.deepEqual([...x1!.headers()], [...b!.headers()]);
  const q0 = await b!.readFloat32('model.layers.0.self_attn.q_proj.weight');
  const q1 = await x1!.readFloat32('model.layers.0.self_attn.q_proj.weight');
  const diff = stats(q1.map((v, i) => v - q0[i]!));
  t.true(Math.abs(diff.std - 0.01) < 0.001, `noise std ${diff.std}`);
  // Norms and embeddings are not linear roles: copied exactly.
  t.true(same(await x1!.readRaw('model.layers.0.input_layernorm.weight'), await b!.readRaw('model.layers.0.input_layernorm.weight')));
  t.true(same(await x1!.readRaw('model.embed_tokens.weight'), await b!.readRaw('model.embed_tokens.weight')));
  t.false(same(await x1!.readRaw('lm_head.weight'), await b!.readRaw('lm_head.weight')));

  t.true(same(await readFile(path.join(dir, 'x1again', 'model.safetensors')), await readFile(path.join(dir, 'x1', 'model.safetensors'))));
  t.false(same(await x2!.readRaw('model.layers.0.mlp.down_proj.weight'), await x1!.readRaw('model.layers.0.mlp.down_proj.weight')));

  // roles: only mlp_up changes.
  t.false(same(await up!.readRaw('model.layers.1.mlp.up_proj.weight'), await b!.readRaw('model.layers.1.mlp.up_proj.weight')));
  t.true(same(await up!.readRaw('model.layers.1.mlp.gate_proj.weight'), await b!.readRaw('model.layers.1.mlp.gate_proj.weight')));
  t.true(same(await up!.readRaw('model.layers.1.self_attn.q_proj.weight'), await b!.readRaw('model.layers.1.self_attn.q_proj.weight')));
});

test('perturb refuses a base of another shape (incompatible_models) and leaves no output', async (t) => {
  const dir = await withTemp(t);
  const base = path.join(dir, 'base');
  await writeSyntheticModel(base, SMALL);
  const out = path.join(dir, 'out');
  const e = await t.throwsAsync(writeSyntheticModel(out, { ...SMALL, intermediateSize: 64, perturb: { from: base, scale: 0.01, seed: 1 } }), {
    instanceOf: MoeforgeError,
  });
  t.is(e.code, 'incompatible_models');
  t.is(e.message, 'perturb base does not match the options: model.layers.0.mlp.down_proj.weight: expected shape [32, 64], got [32, 48]');
  t.deepEqual((await readdir(dir)).sort(), ['base']);
});

test('fast normals: Acklam quantiles and the moments of N(0, 1)', (t) => {
  t.is(inverseNormalCdf(0.5), 0);
  t.true(Math.abs(inverseNormalCdf(0.975) - 1.959963984540054) < 1e-8);
  t.true(Math.abs(inverseNormalCdf(0.001) + 3.090232306167813) < 1e-8);
  t.true(Math.abs(inverseNormalCdf(0.9999) - 3.719016485455709) < 1e-7);
  const z = fillNormalFast(new Rng(3), new Float32Array(400_001), 1);
  const { mean, std } = stats(z);
  t.true(Math.abs(mean) < 0.005, `mean ${mean}`);
  t.true(Math.abs(std - 1) < 0.005, `std ${std}`);
  const within1 = z.filter((v) => Math.abs(v) < 1).length / z.length;
  t.true(Math.abs(within1 - 0.6827) < 0.003, `P(|z| < 1) = ${within1}`);
  // Same seed, same values; addNormalFast adds exactly what fillNormalFast makes.
  const again = fillNormalFast(new Rng(3), new Float32Array(400_001), 1);
  t.true(same(z, again));
  const added = addNormalFast(new Rng(3), new Float32Array(400_001).fill(0), 1);
  t.true(same(z, added));
});

test('syntheticParameterCount and optionsForBytes match what is written', async (t) => {
  for (const family of ['llama', 'qwen2', 'qwen3'] as const) {
    const folder = path.join(await withTemp(t), family);
    const options = { ...SMALL, family, tieWordEmbeddings: family === 'qwen2' };
    await writeSyntheticModel(folder, options);
    const ckpt = await Checkpoint.open(folder);
    const count = [...ckpt.headers().values()].reduce((a, h) => a + h.shape.reduce((x, y) => x * y, 1), 0);
    await ckpt.close();
    t.is(syntheticParameterCount(options), count, family);
  }
  const o = optionsForBytes(2 ** 30, 'BF16');
  const bytes = 2 * syntheticParameterCount(o);
  t.true(bytes >= 2 ** 30 && bytes < 2 ** 30 + 2 * syntheticParameterCount({ ...o, numLayers: 1 }), String(bytes));
});
