// Importance-based expert enhancement (experts/importance/enhance.ts): the loss rise per
// reverted layer finds a layer whose task vector was made useless, the selection rules
// (threshold, keep fraction) revert what they say, and `moeforge merge` with enhance_keep
// writes the base in the reverted layers and the expert elsewhere; bad values are one line.
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Rng } from '../core/rng.js';
import { layerLossRise, layersToRevert } from '../experts/importance/enhance.js';
import { loadModelWeights } from '../experts/importance/model-weights.js';
import { writeBase, writeTokenizer } from './helpers/calibration-models.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';
import { readConfig, readTensors, writeModel } from './helpers/tiny-models.js';

/** base + N(0, 0.08²) on the linear weights of layers 0 and 2, and 1e-6 noise on layer 1 (useless). */
async function writeUselessMiddle(dir: string, base: string): Promise<string> {
  const folder = path.join(dir, 'expert');
  await mkdir(folder);
  const tensors = await readTensors(base);
  const rng = new Rng(5);
  for (const [name, t] of tensors) {
    const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\./.exec(name);
    if (!m) continue;
    const scale = m[1] === '1' ? 1e-6 : 0.08;
    t.data = t.data.map((x) => x + scale * rng.normal());
  }
  await writeModel(folder, await readConfig(base), tensors);
  await writeTokenizer(folder);
  return folder;
}

test('selection rules: threshold, keep fraction, both', (t) => {
  const rise = [0.5, -0.01, 0.2, 0.0005];
  t.deepEqual(layersToRevert(rise, { threshold: 0.001 }), [1, 3]);
  t.deepEqual(layersToRevert(rise, { keep: 0.5 }), [1, 3]);
  t.deepEqual(layersToRevert(rise, { keep: 0.25 }), [1, 2, 3]);
  t.deepEqual(layersToRevert(rise, { keep: 1 }), []);
  t.deepEqual(layersToRevert(rise, { threshold: 0.3, keep: 0.75 }), [1, 2, 3]);
  t.deepEqual(layersToRevert(rise, {}), []);
});

test('the layer whose task vector was made useless has no loss rise and is the one reverted', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-enh-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  const expertPath = await writeUselessMiddle(dir, basePath);
  // The expert's own greedy text: what its fine-tuning made it good at.
  const lm = await CausalLM.load(expertPath);
  const rows: number[][] = [];
  for (const first of [10, 40, 70, 100]) rows.push([1, first, ...(await lm.generate([1, first], { maxNewTokens: 14 }))]);
  lm.dispose();
  const base = await loadModelWeights(basePath, 'base');
  const expert = await loadModelWeights(expertPath, 'expert');
  const { loss, rise } = await layerLossRise(base, expert, rows);
  t.log(loss, rise);
  t.true(Math.abs(rise[1]!) < 1e-4, `useless layer: ${rise[1]}`);
  t.true(rise[0]! > 0.01 && rise[2]! > 0.01, `useful layers: ${rise}`);
  t.deepEqual(layersToRevert(rise, { threshold: 1e-3 }), [1]);
  t.deepEqual(layersToRevert(rise, { keep: 0.6 }), [1]);
});

test('moeforge merge with enhance_keep: reverted layers are the base, kept ones the expert; bad values exit 2', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-enh-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  const expertPath = await writeUselessMiddle(dir, basePath);
  await writeFile(path.join(dir, 'data.txt'), 'the cat sat on the mat\nsome more text here\n');
  const yml = (params: string) =>
    ['merge_method: task_arithmetic', 'base_model: ./base', 'models:', '  - model: ./expert', `    parameters: {weight: 1, calibration: data.txt, ${params}}`, ''].join('\n');
  await writeFile(path.join(dir, 'enh.yml'), yml('enhance_keep: 0.3'));
  const out = path.join(dir, 'out');
  const r = await runCli(['merge', path.join(dir, 'enh.yml'), '--out', out]);
  t.is(r.code, 0, r.stderr);
  const m = /note: enhance: \.\/expert keeps layers \[(\d)\], reverts \[(\d), (\d)\] \(loss rise per layer /.exec(r.stderr);
  t.truthy(m, r.stderr);
  const kept = Number(m![1]);
  const [o, b, e] = await Promise.all([out, basePath, expertPath].map((f) => Checkpoint.open(f)));
  t.teardown(() => Promise.all([o, b, e].map((c) => c!.close())).then(() => undefined));
  for (let l = 0; l < 3; l++) {
    const name = `model.layers.${l}.mlp.up_proj.weight`;
    const [x, y, z] = await Promise.all([o, b, e].map((c) => c!.readFloat32(name)));
    const want = l === kept ? z! : y!;
    let worst = 0;
    for (let j = 0; j < x!.length; j++) worst = Math.max(worst, Math.abs(x![j]! - want[j]!));
    t.true(worst < 1e-7, `layer ${l}: ${worst}`); // base + 1·(expert − base) in float32
  }
  for (const [name, params, re] of [
    ['keep', 'enhance_keep: 1.5', /models\[0\]\.parameters\.enhance_keep.*enhance_keep must be in \(0, 1\]/],
    ['nodata', 'enhance_threshold: 0.01, calibration: ""', /no calibration data for \.\/expert/],
    ['empty', 'enhance_threshold: 0.01, calibration: empty.txt', /the calibration file of \.\/expert has no samples/],
  ] as const) {
    await writeFile(path.join(dir, 'empty.txt'), '');
    await writeFile(path.join(dir, `${name}.yml`), yml(params).replace('calibration: data.txt, ', params.includes('calibration') ? '' : 'calibration: data.txt, '));
    const rr = await runCli(['merge', path.join(dir, `${name}.yml`), '--out', path.join(dir, `out-${name}`)]);
    t.is(rr.code, 2, `${name}: ${rr.stderr}`);
    t.is(rr.stderr.trim().split('\n').length, 1, rr.stderr);
    t.regex(rr.stderr, re, name);
  }
});

test('moeforge build with enhance on a recipe expert: its reverted layers are the base FFN, the kept one its own; shared average too', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-enh-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  const expertPath = await writeUselessMiddle(dir, basePath);
  const data = path.join(dir, 'data.txt');
  await writeFile(data, 'the cat sat on the mat\nsome more text here\n');
  const recipe = path.join(dir, 'moe.yml');
  await writeFile(
    recipe,
    [
      `base_model: ${basePath}`,
      'gate_mode: random',
      'shared_weights: average',
      'experts:',
      `  - source_model: ${expertPath}`,
      `    enhance: {keep: 0.3, calibration: ${data}, samples: 2}`,
      `  - source_model: ${basePath}`,
      '',
    ].join('\n'),
  );
  const out = path.join(dir, 'moe');
  const r = await runCli(['build', recipe, '--out', out, '--quiet']);
  t.is(r.code, 0, r.stderr);
  const m = new RegExp(`note: enhance: ${expertPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} keeps layers \\[(\\d)\\], reverts \\[(\\d), (\\d)\\]`).exec(r.stderr);
  t.truthy(m, r.stderr);
  const kept = Number(m![1]);
  const [o, b, e] = await Promise.all([out, basePath, expertPath].map((f) => Checkpoint.open(f)));
  t.teardown(() => Promise.all([o, b, e].map((c) => c!.close())).then(() => undefined));
  for (let l = 0; l < 3; l++) {
    const ffn = await o!.readFloat32(`model.layers.${l}.block_sparse_moe.experts.0.w3.weight`);
    const src = l === kept ? e! : b!;
    t.deepEqual(ffn, await src.readFloat32(`model.layers.${l}.mlp.up_proj.weight`), `expert 0 layer ${l}`);
    // shared_weights average of (expert, base): the base alone where the expert is reverted.
    const q = await o!.readFloat32(`model.layers.${l}.self_attn.q_proj.weight`);
    const [qb, qe] = await Promise.all([b!, e!].map((c) => c.readFloat32(`model.layers.${l}.self_attn.q_proj.weight`)));
    let worst = 0;
    for (let j = 0; j < q.length; j++) worst = Math.max(worst, Math.abs(q[j]! - (l === kept ? (qb![j]! + qe![j]!) / 2 : qb![j]!)));
    t.true(worst < 1e-6, `attention layer ${l}: ${worst}`);
  }
  const bad = path.join(dir, 'bad.yml');
  await writeFile(bad, [`base_model: ${basePath}`, 'gate_mode: random', 'experts:', `  - source_model: ${expertPath}`, `    enhance: {keep: 2, calibration: ${data}}`, `  - source_model: ${basePath}`, ''].join('\n'));
  const rb = await runCli(['build', bad, '--out', path.join(dir, 'bad-out')]);
  t.is(rb.code, 2, rb.stderr);
  t.is(rb.stderr.trim().split('\n').length, 1, rb.stderr);
  t.regex(rb.stderr, /experts\[0\]\.enhance\.keep.*keep must be in \(0, 1\]/);
});
