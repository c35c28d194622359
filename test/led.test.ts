// LED-Merging (experts/methods/led.ts): election and disjoint steps on a hand-built case,
// masks from real gradients pairwise disjoint, `moeforge merge` writes base + the masked
// task vectors (every element is the base or exactly one model), and bad input is one line.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import type { MergePrepareContext } from '../core/plugins.js';
import { electedMask, led, ledMasks, makeDisjoint, topFraction, type LedPrepared } from '../experts/methods/led.js';
import { mergeArrays } from '../experts/methods/in-memory.js';
import { writeBase, writeExpert } from './helpers/calibration-models.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

const f = (xs: number[]) => Float32Array.from(xs);

test('hand-built case: top-r of both scores, then shared claims dropped', (t) => {
  t.deepEqual([...topFraction(f([0.1, 0.9, 0.5, 0.3]), 0.5)], [0, 1, 1, 0]);
  t.deepEqual([...topFraction(f([2, 2, 1, 0]), 0.25)], [1, 1, 0, 0], 'ties at the cut are kept');
  // 6 elements, r = 0.5: each score keeps its 3 largest.
  const baseA = f([9, 8, 7, 1, 2, 3]); // top: 0 1 2
  const ftA = f([1, 9, 8, 7, 0, 0]); // top: 1 2 3  → A elects 1 2
  const baseB = f([0, 0, 9, 8, 7, 1]); // top: 2 3 4
  const ftB = f([0, 1, 9, 0, 8, 7]); // top: 2 4 5  → B elects 2 4
  t.deepEqual([...electedMask(baseA, ftA, 0.5)], [0, 1, 1, 0, 0, 0]);
  t.deepEqual([...electedMask(baseB, ftB, 0.5)], [0, 0, 1, 0, 1, 0]);
  const [a, b] = ledMasks([baseA, baseB], [ftA, ftB], 0.5);
  // element 2 is claimed by both: dropped from both.
  t.deepEqual([...a!], [0, 1, 0, 0, 0, 0]);
  t.deepEqual([...b!], [0, 0, 0, 0, 1, 0]);
  t.deepEqual(
    makeDisjoint([Uint8Array.from([1, 1, 0]), Uint8Array.from([1, 0, 1]), Uint8Array.from([0, 0, 1])]).map((m) => [...m]),
    [
      [0, 1, 0],
      [0, 0, 0],
      [0, 0, 0],
    ],
  );
});

test('mergeTensor applies the masks: base + lambda · Σ w · mask ⊙ δ', async (t) => {
  const base = f([1, 1, 1, 1]);
  const a = f([2, 3, 4, 5]);
  const b = f([0, 0, 0, 0]);
  const prepared: LedPrepared = { masks: new Map([['tensor', [Uint8Array.from([1, 0, 0, 1]), Uint8Array.from([0, 1, 0, 0])]]]) };
  const input = { base, models: [a, b], global: { lambda: 0.5 }, perModel: [{ weight: 1 }, { weight: 2 }] };
  // mergeArrays has no `prepared`: go through mergeTensor by hand.
  const out = new Float32Array(4);
  await led.mergeTensor(
    {
      tensorName: 'tensor',
      role: 'mlp_up',
      layer: 0,
      numLayers: 1,
      shape: [4],
      numel: 4,
      base: async (s, e) => base.slice(s, e),
      models: [a, b].map((m) => async (s: number, e: number) => m.slice(s, e)),
      global: input.global,
      perModel: input.perModel,
      rng: undefined as never,
      chunkSize: 3,
      prepared,
    },
    async (start, v) => void out.set(v, start),
  );
  t.deepEqual([...out], [1 + 0.5 * 1, 1 + 0.5 * 2 * -1, 1, 1 + 0.5 * 4]);
  await t.throwsAsync(mergeArrays(led, { base, models: [a, b] }), { message: /without the calibration pre-pass/ });
});

async function fixture(t: import('ava').ExecutionContext) {
  const { dir, cleanup } = await tempDir('moeforge-led-');
  t.teardown(cleanup);
  const base = await writeBase(dir);
  await writeExpert(dir, base, 'a', 11);
  await writeExpert(dir, base, 'b', 12);
  await writeFile(path.join(dir, 'a.txt'), ['the cat sat on the mat', 'a dog ran far', 'cats and dogs play'].join('\n'));
  await writeFile(path.join(dir, 'b.jsonl'), ['{"text": "1 + 2 = 3"}', '{"text": "4 * 5 = 20"}', '"7 - 3 = 4"'].join('\n'));
  return { dir, base };
}

test('real gradients: masks are pairwise disjoint and the notes state what was kept', async (t) => {
  const { dir, base } = await fixture(t);
  const notes: string[] = [];
  const ctx: MergePrepareContext = {
    baseFolder: base,
    modelFolders: [path.join(dir, 'a'), path.join(dir, 'b')],
    modelRefs: ['./a', './b'],
    templateFolder: base,
    global: { r: 0.3 },
    perModel: [{ calibration: 'a.txt' }, { calibration: 'b.jsonl', calibration_seq_len: 8 }],
    configDir: dir,
    seed: 0,
    note: (l) => notes.push(l),
  };
  const prepared = (await led.prepare!(ctx)) as LedPrepared;
  t.is(prepared.masks.size, 3 * 9 + 3);
  let keptA = 0;
  let keptB = 0;
  let total = 0;
  let both = 0;
  for (const [a, b] of prepared.masks.values()) {
    for (let j = 0; j < a!.length; j++) if (a![j]! === 1 && b![j]! === 1) both++;
    keptA += a!.reduce((s, x) => s + x, 0);
    keptB += b!.reduce((s, x) => s + x, 0);
    total += a!.length;
  }
  t.is(both, 0, 'no element is kept by both models');
  // Each mask is at most the top 30% of the model's own scores, and not empty.
  t.true(keptA > 0.02 * total && keptA < 0.3 * total, `${keptA} / ${total}`);
  t.true(keptB > 0.02 * total && keptB < 0.3 * total, `${keptB} / ${total}`);
  t.is(notes.length, 2);
  t.regex(notes[0]!, /^led: \.\/a elects \d+\.\d% of the weights \(top 0\.3 of base and model importance\), keeps \d+\.\d% after the disjoint step$/);
});

test('moeforge merge with led: each output element is the base or exactly one model', async (t) => {
  const { dir, base } = await fixture(t);
  const yml = path.join(dir, 'led.yml');
  await writeFile(
    yml,
    [
      'merge_method: led',
      'base_model: ./base',
      'parameters: {r: 0.4, calibration_samples: 3, calibration_seq_len: 16}',
      'models:',
      '  - model: ./a',
      '    parameters: {calibration: a.txt}',
      '  - model: ./b',
      '    parameters: {calibration: b.jsonl}',
      '',
    ].join('\n'),
  );
  const out = path.join(dir, 'out');
  const r = await runCli(['merge', yml, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /note: led: \.\/a elects/);
  const [o, b0, a, b] = await Promise.all([out, base, path.join(dir, 'a'), path.join(dir, 'b')].map((p) => Checkpoint.open(p)));
  t.teardown(() => Promise.all([o, b0, a, b].map((c) => c!.close())).then(() => undefined));
  let fromA = 0;
  let fromB = 0;
  let kept = 0;
  for (const name of o!.names()) {
    const [x, y, ya, yb] = await Promise.all([o, b0, a, b].map((c) => c!.readFloat32(name)));
    for (let j = 0; j < x!.length; j++) {
      if (x![j] === y![j]) kept++;
      else if (Math.abs(x![j]! - ya![j]!) < 1e-6) fromA++;
      else if (Math.abs(x![j]! - yb![j]!) < 1e-6) fromB++;
      else t.fail(`${name}[${j}] is neither the base nor one model`);
    }
  }
  t.true(fromA > 0 && fromB > 0 && kept > fromA + fromB, `${fromA} ${fromB} ${kept}`);
});

test('bad input through moeforge merge: one line each, exit 2', async (t) => {
  const { dir } = await fixture(t);
  await writeFile(path.join(dir, 'empty.txt'), '\n\n');
  const cases: [string, string[], RegExp][] = [
    ['r', ['parameters: {r: 1.5}', 'models:', '  - model: ./a', '    parameters: {calibration: a.txt}'], /parameters\.r.*r must be in \(0, 1\]/],
    ['missing', ['models:', '  - model: ./a', '    parameters: {calibration: a.txt}', '  - model: ./b'], /no calibration data for \.\/b/],
    ['empty', ['models:', '  - model: ./a', '    parameters: {calibration: empty.txt}'], /the calibration file of \.\/a has no samples/],
    ['absent', ['models:', '  - model: ./a', '    parameters: {calibration: nowhere.txt}'], /nowhere\.txt/],
    [
      'memory',
      ['parameters: {calibration_max_bytes: 100000}', 'models:', '  - model: ./a', '    parameters: {calibration: a.txt}'],
      /over the 0\.1 MiB limit \(calibration_max_bytes\)/,
    ],
  ];
  for (const [name, lines, re] of cases) {
    const yml = path.join(dir, `${name}.yml`);
    await writeFile(yml, ['merge_method: led', 'base_model: ./base', ...lines, ''].join('\n'));
    const r = await runCli(['merge', yml, '--out', path.join(dir, `out-${name}`)]);
    t.is(r.code, 2, `${name}: ${r.stderr}`);
    const errLines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('note:'));
    t.is(errLines.length, 1, `${name}: ${r.stderr}`);
    t.regex(errLines[0]!, re, name);
  }
});
