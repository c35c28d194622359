// `moeforge merge` end to end on tiny synthetic models: the output is a checkpoint that
// Checkpoint.open reads with a valid config, the numbers are the method's, --dry-run writes
// nothing, and a bad config is one line and exit code 2 with no output folder.
import 'reflect-metadata';
import test from 'ava';
import { access, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { main } from '../cli/main.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { normalizeConfig } from '../core/config/normalize.js';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { tempDir } from './helpers/paths.js';

const SIZE = { hiddenSize: 16, intermediateSize: 32, numLayers: 2, vocabSize: 64, numHeads: 2, numKvHeads: 1 };

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'moeforge', ...argv]);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

async function models(t: import('ava').ExecutionContext) {
  const { dir, cleanup } = await tempDir('moeforge-merge-');
  t.teardown(cleanup);
  const base = path.join(dir, 'base');
  await writeSyntheticModel(base, { ...SIZE, seed: 1 });
  await writeFile(path.join(base, 'tokenizer_config.json'), '{"model_max_length": 128}\n');
  for (const [i, name] of ['a', 'b'].entries()) {
    await writeSyntheticModel(path.join(dir, name), { ...SIZE, seed: 10 + i, perturb: { from: base, scale: 0.01, seed: 20 + i } });
  }
  return dir;
}

test.serial('ties merge: readable output, config valid, values equal a hand merge of one tensor', async (t) => {
  const dir = await models(t);
  await writeFile(
    path.join(dir, 'ties.yml'),
    [
      'models:',
      '  - model: ./a',
      '    parameters: {weight: 1, density: 0.5}',
      '  - model: ./b',
      '    parameters:',
      '      weight: [0.2, 1]', // gradient over the 2 layers
      '      density: 0.5',
      'base_model: ./base',
      'merge_method: ties',
      'dtype: bfloat16',
      'tokenizer_source: base',
      '',
    ].join('\r\n'), // CRLF on purpose
  );
  const out = path.join(dir, 'out');
  const r = await capture(['merge', path.join(dir, 'ties.yml'), '--out', out, '--quiet']);
  t.is(r.code, 0, r.err);
  const ck = await Checkpoint.open(out);
  t.teardown(() => ck.close());
  const cfg = normalizeConfig(ck.rawConfig, 'out/config.json');
  t.is(cfg.numLayers, 2);
  t.is(ck.rawConfig.torch_dtype, 'bfloat16');
  const baseCk = await Checkpoint.open(path.join(dir, 'base'));
  t.teardown(() => baseCk.close());
  t.deepEqual(ck.names(), baseCk.names());
  for (const n of ck.names()) {
    t.is(ck.header(n).dtype, 'BF16');
    t.deepEqual(ck.header(n).shape, baseCk.header(n).shape);
  }
  // Layer 1's mlp.up_proj: weight of b is the gradient's end, 1; k = ⌊0.5·n⌋ per model.
  const name = 'model.layers.1.mlp.up_proj.weight';
  const a = await Checkpoint.open(path.join(dir, 'a'));
  const b = await Checkpoint.open(path.join(dir, 'b'));
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  const [x0, xa, xb, got] = await Promise.all([baseCk.readFloat32(name), a.readFloat32(name), b.readFloat32(name), ck.readFloat32(name)]);
  const trim = (x: Float32Array) => {
    const d = Array.from(x, (v, i) => Math.fround(v - x0[i]!));
    const k = Math.floor(0.5 * d.length);
    const thr = [...d].map(Math.abs).sort((p, q) => q - p)[k - 1]!;
    return d.map((v) => (Math.abs(v) >= thr ? v : 0));
  };
  const [da, db] = [trim(xa), trim(xb)];
  let worst = 0;
  for (let i = 0; i < x0.length; i++) {
    const s = da[i]! + db[i]!;
    const agree = [da[i]!, db[i]!].filter((v) => (s >= 0 ? v > 0 : v < 0));
    const want = x0[i]! + (agree.length ? agree.reduce((p, q) => p + q, 0) / agree.length : 0);
    worst = Math.max(worst, Math.abs(got[i]! - want) / Math.max(1e-3, Math.abs(want)));
  }
  t.true(worst < 1 / 128, `bf16 relative error ${worst}`); // bf16 has 8 significant bits
  t.deepEqual(JSON.parse(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8')), { model_max_length: 128 });
  const card = await readFile(path.join(out, 'README.md'), 'utf8');
  t.regex(card, /^---\nbase_model:\n {2}- \.\/base\n {2}- \.\/a\n {2}- \.\/b\ntags:\n {2}- merge\n {2}- moeforge\nlibrary_name: transformers\n---/);
  const prov = parse(await readFile(path.join(out, 'moeforge.yml'), 'utf8')) as Record<string, unknown>;
  t.is(prov.merge_method, 'ties');
  t.is(prov.seed, 0);
  t.truthy(prov.version);
  t.deepEqual((prov.config as { merge_method: string }).merge_method, 'ties');
});

test.serial('--dry-run prints the plan and writes nothing', async (t) => {
  const dir = await models(t);
  await writeFile(path.join(dir, 'm.yml'), 'models:\n  - model: ./a\n  - model: ./b\nbase_model: ./base\nmerge_method: dare_ties\nparameters: {weight: 0.5, density: 0.7}\nrandom_seed: 7\n');
  const out = path.join(dir, 'out');
  const before = (await readdir(dir)).sort();
  const r = await capture(['merge', path.join(dir, 'm.yml'), '--out', out, '--dry-run', '--shard-size', '20KB']);
  t.is(r.code, 0, r.err);
  t.regex(r.out, /model\.layers\.0\.self_attn\.q_proj\.weight \[16, 16\] F32 1\.0 KiB -> model-00001-of-\d+\.safetensors/);
  t.regex(r.out, /\d+ tensors, [\d.]+ KiB in \d+ shards/);
  t.regex(r.out, /peak memory estimate/);
  t.regex(r.out, /seed 7/);
  t.deepEqual((await readdir(dir)).sort(), before);
});

test.serial('a bad config is one line, exit code 2, and no output folder', async (t) => {
  const dir = await models(t);
  const out = path.join(dir, 'out');
  const cases: [string, RegExp][] = [
    ['models:\n  - model: ./a\n    parameters: {weight: 1, density: 1.5}\nbase_model: ./base\nmerge_method: ties\n', /error\[invalid_parameter\]: models\[0\]\.parameters\.density: density must be in \(0, 1\]/],
    ['models:\n  - model: ./a\nbase_model: ./base\nmerge_method: tie\n', /error\[invalid_recipe\]: bad\.yml: merge_method: unsupported merge method "tie"/],
    ['models:\n  - model: ./a\nmerge_method: ties\nmerge_method: slerp\n', /error\[invalid_recipe\]: bad\.yml: duplicate key 'merge_method' at line 4/],
    ['models:\n  - model: ./nowhere\nbase_model: ./base\nmerge_method: ties\n', /error\[missing_file\]: \.\/nowhere: /],
    ['models:\n  - model: ./a\n  - model: ./b\nbase_model: ./base\nmerge_method: slerp\nparameters: {t: 0.5}\n', /error\[invalid_parameter\]: models: slerp merges exactly two models .*got 3/],
  ];
  for (const [yml, want] of cases) {
    await writeFile(path.join(dir, 'bad.yml'), yml);
    const r = await capture(['merge', path.join(dir, 'bad.yml'), '--out', out]);
    t.is(r.code, 2, yml);
    t.regex(r.err, want);
    t.is(r.err.trim().split('\n').length, 1, r.err);
    await t.throwsAsync(access(out));
  }
});
