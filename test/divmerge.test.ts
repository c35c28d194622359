// DivMerge (experts/importance/divergence.ts, experts/methods/divmerge.ts): the JS divergence
// is exact on a hand case, Adam lowers the objective, and when the target is an exact
// task-arithmetic merge of the experts the optimiser recovers its coefficients.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { tf } from '../core/backend.js';
import { initBackend } from '../core/backend.js';
import { disposeWeights, rowLogits, weightTensors } from '../experts/importance/gradients.js';
import { jsDivergence, optimiseCoefficients, type DivergenceProblem } from '../experts/importance/divergence.js';
import { loadModelWeights, type ModelWeights } from '../experts/importance/model-weights.js';
import { writeBase, writeExpert } from './helpers/calibration-models.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

test('JS divergence on a hand case: 0 for equal distributions, the closed form otherwise', async (t) => {
  await initBackend();
  const p = tf.tensor2d([[Math.log(0.5), Math.log(0.5)]]);
  const q = tf.tensor2d([[Math.log(0.9), Math.log(0.1)]]);
  const js = (await jsDivergence(p, q).data())[0]!;
  const kl = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * Math.log(x / b[i]!), 0);
  const m = [0.7, 0.3];
  t.true(Math.abs(js - (0.5 * kl([0.5, 0.5], m) + 0.5 * kl([0.9, 0.1], m))) < 1e-6);
  t.true(Math.abs((await jsDivergence(q, q).data())[0]!) < 1e-7);
  tf.dispose([p, q]);
});

const ROWS = [
  [1, 10, 20, 30, 40, 50, 60, 70],
  [1, 90, 80, 70, 60, 50],
  [1, 5, 5, 6, 6, 7, 7, 8, 8],
];

function deltaOf(m: ModelWeights, base: ModelWeights): Map<string, Float32Array> {
  return new Map(base.names.map((n) => [n, m.values.get(n)!.map((x, i) => x - base.values.get(n)![i]!)]));
}

test('the target is base + 0.3·δa + 0.6·δb: Adam from 1/2 lowers JS and recovers (0.3, 0.6)', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-div-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  const base = await loadModelWeights(basePath, 'base');
  const a = await loadModelWeights(await writeExpert(dir, basePath, 'a', 31, 0.08), 'a');
  const b = await loadModelWeights(await writeExpert(dir, basePath, 'b', 32, 0.08), 'b');
  const deltas = [deltaOf(a, base), deltaOf(b, base)];
  const target = new Map(base.names.map((n) => [n, base.values.get(n)!.map((x, i) => x + 0.3 * deltas[0]!.get(n)![i]! + 0.6 * deltas[1]!.get(n)![i]!)]));
  const w = weightTensors(base, target);
  const logits = await rowLogits(base, w, ROWS);
  disposeWeights(w);
  const prob: DivergenceProblem = {
    config: base.config,
    names: base.names,
    shapes: base.shapes,
    base: base.values,
    deltas,
    groupOf: () => 0,
    groups: 1,
    teachers: [{ rows: ROWS, logits }],
  };
  const r = await optimiseCoefficients(prob, { steps: 40, learningRate: 0.05 });
  t.log(r.coefficients, r.before, r.after);
  t.true(r.after < r.before / 20, `JS ${r.before} → ${r.after}`);
  t.true(Math.abs(r.coefficients[0]![0]! - 0.3) < 0.03, `${r.coefficients}`);
  t.true(Math.abs(r.coefficients[1]![0]! - 0.6) < 0.03, `${r.coefficients}`);
});

test('granularity layer: per-layer coefficients of a per-layer task-arithmetic target are recovered', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-div-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  const base = await loadModelWeights(basePath, 'base');
  const a = await loadModelWeights(await writeExpert(dir, basePath, 'a', 51, 0.08), 'a');
  const b = await loadModelWeights(await writeExpert(dir, basePath, 'b', 52, 0.08), 'b');
  const deltas = [deltaOf(a, base), deltaOf(b, base)];
  // groups: layers 0..2, then 3 for the tensors outside the layers.
  const truth = [
    [0.2, 0.7, 0.4, 0.5],
    [0.6, 0.3, 0.4, 0.5],
  ];
  const groupOf = (n: string) => base.layers.get(n) ?? 3;
  const target = new Map(
    base.names.map((n) => [n, base.values.get(n)!.map((x, i) => x + truth[0]![groupOf(n)]! * deltas[0]!.get(n)![i]! + truth[1]![groupOf(n)]! * deltas[1]!.get(n)![i]!)]),
  );
  const w = weightTensors(base, target);
  const logits = await rowLogits(base, w, ROWS);
  disposeWeights(w);
  const r = await optimiseCoefficients(
    { config: base.config, names: base.names, shapes: base.shapes, base: base.values, deltas, groupOf, groups: 4, teachers: [{ rows: ROWS, logits }] },
    { steps: 40, learningRate: 0.05 },
  );
  t.log(r.coefficients, r.before, r.after);
  t.true(r.after < r.before / 10, `JS ${r.before} → ${r.after}`);
  const worst = Math.max(...r.coefficients.flatMap((row, i) => row.map((c, g) => Math.abs(c - truth[i]![g]!))));
  t.true(worst < 0.06, `largest coefficient error ${worst}`);
});

test('moeforge merge with divmerge: JS falls, the output is base + Σ c_i δ_i with the reported c', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-div-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  await writeExpert(dir, basePath, 'a', 41, 0.08);
  await writeExpert(dir, basePath, 'b', 42, 0.08, ['mlp_gate', 'mlp_up', 'mlp_down']);
  await writeFile(path.join(dir, 'a.txt'), 'the cat sat\na dog ran\n');
  await writeFile(path.join(dir, 'b.txt'), '1 + 2 = 3\n4 * 5 = 20\n');
  const yml = path.join(dir, 'div.yml');
  await writeFile(
    yml,
    [
      'merge_method: divmerge',
      'base_model: ./base',
      'parameters: {steps: 6, learning_rate: 0.1, continuation_tokens: 4}',
      'models:',
      '  - model: ./a',
      '    parameters: {calibration: a.txt}',
      '  - model: ./b',
      '    parameters: {calibration: b.txt}',
      '',
    ].join('\n'),
  );
  const out = path.join(dir, 'out');
  const r = await runCli(['merge', yml, '--out', out]);
  t.is(r.code, 0, r.stderr);
  const m = /divmerge: mean JS divergence ([\d.]+) before \(all coefficients 1\/2\), ([\d.]+) after 6 Adam steps/.exec(r.stderr);
  t.truthy(m, r.stderr);
  t.true(Number(m![2]) < Number(m![1]), r.stderr);
  const coeff = ['a', 'b'].map((x) => Number(new RegExp(`divmerge: \\./${x} coefficient ([-\\d.]+)`).exec(r.stderr)![1]));
  t.true(coeff.every((c) => c !== 0.5), `${coeff}`);
  const cks = await Promise.all([out, basePath, path.join(dir, 'a'), path.join(dir, 'b')].map((f) => Checkpoint.open(f)));
  t.teardown(() => Promise.all(cks.map((c) => c.close())).then(() => undefined));
  for (const name of ['model.layers.0.mlp.down_proj.weight', 'model.layers.2.self_attn.v_proj.weight']) {
    const [o, b, a1, b1] = await Promise.all(cks.map((c) => c.readFloat32(name)));
    let worst = 0;
    for (let j = 0; j < o!.length; j++) worst = Math.max(worst, Math.abs(o![j]! - (b![j]! + coeff[0]! * (a1![j]! - b![j]!) + coeff[1]! * (b1![j]! - b![j]!))));
    t.true(worst < 1e-4, `${name}: ${worst}`);
  }
});

test('bad divmerge parameters through moeforge merge: one line each, exit 2', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-div-');
  t.teardown(cleanup);
  const basePath = await writeBase(dir);
  await writeExpert(dir, basePath, 'a', 41, 0.08);
  for (const [name, params, re] of [
    ['gran', '{granularity: neuron}', /parameters\.granularity/],
    ['lr', '{learning_rate: 0}', /parameters\.learning_rate.*learning_rate must be > 0/],
    ['steps', '{steps: 2.5}', /parameters\.steps/],
  ] as const) {
    const yml = path.join(dir, `${name}.yml`);
    await writeFile(yml, ['merge_method: divmerge', 'base_model: ./base', `parameters: ${params}`, 'models:', '  - model: ./a', '    parameters: {calibration: a.txt}', ''].join('\n'));
    const r = await runCli(['merge', yml, '--out', path.join(dir, `out-${name}`)]);
    t.is(r.code, 2, `${name}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re, name);
  }
});
