// Sens-Merging (experts/methods/sens.ts): per-layer coefficients are a softmax over models
// (each layer sums to 1), equal the stated formula on a hand-computed case and on real
// gradients, change with the calibration data, and `moeforge merge` applies them as the
// per-layer weights of the base method; bad parameters are one line, exit 2.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import type { MergePrepareContext } from '../core/plugins.js';
import { logitsAlignment } from '../experts/importance/transferability.js';
import { sens, sensCoefficients, softmax, type SensPrepared } from '../experts/methods/sens.js';
import { writeBase, writeExpert } from './helpers/calibration-models.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

test('hand-computed coefficients: layer-normalised sensitivity × transferability, softmax over models', (t) => {
  // a: [1, 3] → normalised [0.5, 1.5]; b: [2, 2] → [1, 1]; τ = [1, 0.5]; T = 1.
  const c = sensCoefficients(
    [
      [1, 3],
      [2, 2],
    ],
    [1, 0.5],
    1,
  );
  t.deepEqual(c.layerCoefficients[0], [0.5, 0.5]); // 0.5·1 vs 1·0.5
  const e = Math.exp(1.5 - 0.5);
  t.true(Math.abs(c.layerCoefficients[1]![0]! - e / (e + 1)) < 1e-12);
  t.true(Math.abs(c.globalCoefficients[0]! - (0.5 + e / (e + 1)) / 2) < 1e-12);
  // A lower temperature sharpens, a higher one flattens.
  const cold = sensCoefficients([[1, 3], [2, 2]], [1, 0.5], 0.1).layerCoefficients[1]!;
  const hot = sensCoefficients([[1, 3], [2, 2]], [1, 0.5], 100).layerCoefficients[1]!;
  t.true(cold[0]! > 0.9999 && Math.abs(hot[0]! - 0.5) < 0.01);
  t.deepEqual(softmax([0, 0, 0, 0], 1), [0.25, 0.25, 0.25, 0.25]);
  // Alignment: identical logits 1, shifted logits 1 (centred), negated −1.
  const a = Float32Array.from([1, 2, 3, 0, 5, 1]);
  t.true(Math.abs(logitsAlignment(a, a, 3) - 1) < 1e-6);
  t.true(Math.abs(logitsAlignment(a, a.map((x) => x + 7), 3) - 1) < 1e-6);
  t.true(Math.abs(logitsAlignment(a, a.map((x) => -x), 3) + 1) < 1e-6);
});

async function fixture(t: import('ava').ExecutionContext) {
  const { dir, cleanup } = await tempDir('moeforge-sens-');
  t.teardown(cleanup);
  const base = await writeBase(dir);
  await writeExpert(dir, base, 'a', 21);
  await writeExpert(dir, base, 'b', 22, 0.05, ['mlp_gate', 'mlp_up', 'mlp_down']);
  await writeFile(path.join(dir, 'a.txt'), ['the cat sat on the mat', 'a dog ran far away', 'cats and dogs'].join('\n'));
  await writeFile(path.join(dir, 'a2.txt'), ['ZZZZ QQQQ 9999 ####', '}}}}]]]] ~~~~', '@@@@ %%%% ^^^^'].join('\n'));
  await writeFile(path.join(dir, 'b.txt'), ['1 + 2 = 3', '4 * 5 = 20', '7 - 3 = 4'].join('\n'));
  const ctx = (aData: string, temperature = 1): MergePrepareContext => ({
    baseFolder: base,
    modelFolders: [path.join(dir, 'a'), path.join(dir, 'b')],
    modelRefs: ['./a', './b'],
    templateFolder: base,
    global: { temperature, base_method: 'task_arithmetic' },
    perModel: [{ calibration: aData }, { calibration: 'b.txt' }],
    configDir: dir,
    seed: 0,
    note: () => undefined,
  });
  return { dir, base, ctx };
}

test('real gradients: every layer sums to 1, the formula holds, the coefficients change with the data', async (t) => {
  const { ctx } = await fixture(t);
  const p = (await sens.prepare!(ctx('a.txt', 0.05))) as SensPrepared;
  t.is(p.layerCoefficients.length, 3);
  for (const row of p.layerCoefficients) {
    t.is(row.length, 2);
    t.true(Math.abs(row[0]! + row[1]! - 1) < 1e-12);
    t.true(row.every((x) => x > 0 && x < 1));
  }
  t.true(Math.abs(p.globalCoefficients[0]! + p.globalCoefficients[1]! - 1) < 1e-12);
  t.deepEqual(sensCoefficients(p.sensitivity, p.transferability, 0.05).layerCoefficients, p.layerCoefficients);
  t.true(p.sensitivity.every((s) => s.every((x) => x > 0)));
  t.true(p.transferability.every((x) => x > 0.5 && x <= 1), `${p.transferability}`);
  const q = (await sens.prepare!(ctx('a2.txt', 0.05))) as SensPrepared;
  const diff = Math.max(...q.layerCoefficients.flatMap((row, l) => row.map((x, i) => Math.abs(x - p.layerCoefficients[l]![i]!))));
  t.true(diff > 1e-3, `other data for ./a moves the coefficients by ${diff}`);
  t.notDeepEqual(q.sensitivity[0], p.sensitivity[0]);
  t.deepEqual(q.sensitivity[1], p.sensitivity[1], "b's sensitivity does not depend on a's data");
});

test('moeforge merge with sens over task_arithmetic: layer tensors are base + Σ α_i^l δ_i', async (t) => {
  const { dir, base, ctx } = await fixture(t);
  const yml = path.join(dir, 'sens.yml');
  await writeFile(
    yml,
    [
      'merge_method: sens',
      'base_model: ./base',
      'parameters: {base_method: task_arithmetic, temperature: 0.05}',
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
  t.regex(r.stderr, /note: sens: layer 2 weights \.\/a 0\.\d{3}, \.\/b 0\.\d{3} \(task_arithmetic\)/);
  const p = (await sens.prepare!(ctx('a.txt', 0.05))) as SensPrepared;
  const cks = await Promise.all([out, base, path.join(dir, 'a'), path.join(dir, 'b')].map((f) => Checkpoint.open(f)));
  t.teardown(() => Promise.all(cks.map((c) => c.close())).then(() => undefined));
  for (const [name, alpha] of [
    ['model.layers.1.mlp.up_proj.weight', p.layerCoefficients[1]!],
    ['model.layers.2.self_attn.q_proj.weight', p.layerCoefficients[2]!],
    ['lm_head.weight', p.globalCoefficients],
  ] as const) {
    const [o, b, a1, b1] = await Promise.all(cks.map((c) => c.readFloat32(name)));
    let worst = 0;
    for (let j = 0; j < o!.length; j++) {
      const want = b![j]! + alpha[0]! * (a1![j]! - b![j]!) + alpha[1]! * (b1![j]! - b![j]!);
      worst = Math.max(worst, Math.abs(o![j]! - want));
    }
    t.true(worst < 1e-6, `${name}: ${worst}`);
  }
});

test('bad parameters through moeforge merge: one line each, exit 2', async (t) => {
  const { dir } = await fixture(t);
  const cases: [string, string, RegExp][] = [
    ['cold', '{temperature: 0}', /parameters\.temperature.*temperature must be > 0/],
    ['method', '{base_method: slerp}', /parameters\.base_method.*base_method must be one of task_arithmetic, ties, dare_ties, dare_linear/],
    ['density', '{base_method: ties, density: 1.5}', /density/],
  ];
  for (const [name, params, re] of cases) {
    const yml = path.join(dir, `${name}.yml`);
    await writeFile(yml, ['merge_method: sens', 'base_model: ./base', `parameters: ${params}`, 'models:', '  - model: ./a', '    parameters: {calibration: a.txt}', ''].join('\n'));
    const r = await runCli(['merge', yml, '--out', path.join(dir, `out-${name}`)]);
    t.is(r.code, 2, `${name}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re, name);
  }
});
