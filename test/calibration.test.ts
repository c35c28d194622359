// Calibration data and the gradient machinery of the data-driven merges (issue 10): the
// differentiable pass reproduces transformers' logits on the llama-tiny golden, its
// gradients match finite differences (GQA rows, embeddings, lm_head), importance sums per
// layer add up, calibration files are sampled as stated, and bad data is one clear error.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tf } from '../core/backend.js';
import { MoeforgeError } from '../core/errors.js';
import { calibrationSpec, loadCalibration, pickSamples, readCalibrationTexts } from '../experts/importance/calibration.js';
import { disposeWeights, importance, meanLoss, weightTensors } from '../experts/importance/gradients.js';
import { lmLogits } from '../experts/importance/lm-graph.js';
import { loadModelWeights } from '../experts/importance/model-weights.js';
import { writeBase } from './helpers/calibration-models.js';
import { golden, tempDir } from './helpers/paths.js';
import { goldenExpected, maxAbsDiff } from './helpers/tiny-models.js';

for (const name of ['llama-tiny', 'qwen2-tiny', 'mistral-tiny'] as const) {
  test(`the differentiable pass gives the golden logits of ${name} (one row and batched)`, async (t) => {
    const m = await loadModelWeights(golden(name), name);
    const { inputIds, expected } = await goldenExpected(golden(name));
    t.teardown(() => expected.close());
    const want = await expected.readFloat32('logits'); // [2, 12, 128]
    const w = weightTensors(m);
    t.teardown(() => disposeWeights(w));
    for (const [b, ids] of inputIds.entries()) {
      const logits = tf.tidy(() => lmLogits(m.config, (n) => w.get(n)!, ids));
      const got = logits.dataSync();
      logits.dispose();
      t.true(maxAbsDiff(got, want.subarray(b * 12 * 128, (b + 1) * 12 * 128)) < 1e-4, `row ${b}`);
    }
    const batched = tf.tidy(() => lmLogits(m.config, (n) => w.get(n)!, inputIds));
    t.true(maxAbsDiff(batched.dataSync(), want) < 1e-4, 'batch of 2');
    batched.dispose();
  });
}

test('importance = |θ ⊙ ∇θ L| with gradients equal to central differences; per-layer sums add up', async (t) => {
  const m = await loadModelWeights(golden('llama-tiny'), 'llama-tiny');
  const rows = [
    [1, 5, 9, 17, 33, 40, 2],
    [1, 70, 3, 12, 100],
  ];
  const imp = await importance(m, rows);
  const w = weightTensors(m);
  const loss = await meanLoss(m, w, rows);
  disposeWeights(w);
  t.true(Math.abs(imp.loss - loss) < 1e-5);
  t.true(loss > 4 && loss < 5.5, `a near-uniform tiny model has loss ≈ ln 128 = 4.85, got ${loss}`);
  // Central differences in float64-ish steps on a few elements of different roles.
  const probes: [string, number][] = [
    ['model.layers.1.self_attn.k_proj.weight', 37], // GQA: repeated rows must sum their gradients
    ['model.layers.0.mlp.down_proj.weight', 400],
    ['model.embed_tokens.weight', 5 * 64 + 3], // a token that occurs
    ['lm_head.weight', 9 * 64 + 10],
    ['model.layers.2.input_layernorm.weight', 7],
  ];
  for (const [name, i] of probes) {
    const theta = m.values.get(name)!;
    const v0 = theta[i]!;
    // A step small against θ (float32 losses limit how small): curvature stays negligible.
    const eps = Math.min(3e-2, Math.max(2e-3, 0.1 * Math.abs(v0)));
    const at = async (v: number) => {
      const values = new Map(m.values);
      const copy = theta.slice();
      copy[i] = v;
      values.set(name, copy);
      const wt = weightTensors(m, values);
      const l = await meanLoss(m, wt, rows);
      disposeWeights(wt);
      return l;
    };
    const g = ((await at(v0 + eps)) - (await at(v0 - eps))) / (2 * eps);
    const want = Math.abs(v0 * g);
    const got = imp.scores.get(name)![i]!;
    t.log(name, got, want);
    t.true(Math.abs(got - want) <= 0.02 * want + 2e-6, `${name}[${i}]: ${got} vs ${want}`);
  }
  let total = 0;
  for (const s of imp.scores.values()) for (const x of s) total += x;
  const sum = imp.layerSums.reduce((a, b) => a + b, 0) + imp.globalSum;
  t.true(Math.abs(total - sum) < 1e-6 * total);
  t.is(imp.layerSums.length, 3);
  t.true(imp.layerSums.every((x) => x > 0));
});

test('calibration files: text and JSONL, seeded sample choice, truncation to the sequence length', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await writeBase(dir);
  const txt = path.join(dir, 'data.txt');
  await writeFile(txt, 'alpha beta\r\n\r\ngamma\ndelta epsilon zeta\n');
  t.deepEqual(await readCalibrationTexts(txt, 'm'), ['alpha beta', 'gamma', 'delta epsilon zeta']);
  const jsonl = path.join(dir, 'data.jsonl');
  await writeFile(jsonl, '{"text": "one"}\n"two"\n\n{"text": "three", "id": 3}\n');
  t.deepEqual(await readCalibrationTexts(jsonl, 'm'), ['one', 'two', 'three']);

  const texts = Array.from({ length: 20 }, (_, i) => `s${i}`);
  const a = pickSamples(texts, 5, 7);
  t.deepEqual(a, pickSamples(texts, 5, 7));
  t.notDeepEqual(a, pickSamples(texts, 5, 8));
  t.is(new Set(a).size, 5);
  t.is(pickSamples(texts, 50, 0).length, 20);

  const spec = calibrationSpec({ calibration: 'data.txt', calibration_samples: 2, calibration_seq_len: 4 }, 'expert-a', 'models[0].parameters.', dir);
  t.deepEqual(spec, { file: txt, samples: 2, seqLen: 4, seed: 0 });
  const rows = await loadCalibration(spec, base, 'expert-a');
  t.is(rows.length, 2);
  // BOS (id 1) then one token per character, cut at 4 tokens.
  for (const r of rows) {
    t.is(r[0], 1);
    t.true(r.length >= 2 && r.length <= 4);
  }
});

test('missing, unreadable or empty calibration data: one error naming the model or file', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const noData = t.throws(() => calibrationSpec({}, './expert-b', 'models[1].parameters.', dir), { instanceOf: MoeforgeError })!;
  t.is((noData as MoeforgeError).code, 'invalid_parameter');
  t.regex(noData.message, /no calibration data for \.\/expert-b/);
  t.is((noData as MoeforgeError).path, 'models[1].parameters.calibration');
  const bad = t.throws(() => calibrationSpec({ calibration: 'x.txt', calibration_samples: 0 }, 'e', 'p.', dir))!;
  t.is((bad as MoeforgeError).path, 'p.calibration_samples');

  const missing = await t.throwsAsync(readCalibrationTexts(path.join(dir, 'nope.txt'), './expert-b'), { instanceOf: MoeforgeError });
  t.regex(missing!.message, /expert-b/);
  const empty = path.join(dir, 'empty.txt');
  await writeFile(empty, '\n  \n');
  const e = await t.throwsAsync(readCalibrationTexts(empty, './expert-b'), { instanceOf: MoeforgeError });
  t.is((e as MoeforgeError).code, 'invalid_data');
  t.is(e!.message, 'the calibration file of ./expert-b has no samples');
  const badJson = path.join(dir, 'bad.jsonl');
  await writeFile(badJson, '{"text": "ok"}\n{"txt": "no"}\n');
  const j = await t.throwsAsync(readCalibrationTexts(badJson, 'm'), { instanceOf: MoeforgeError });
  t.is((j as MoeforgeError).path, `${badJson}:2`);
});

test('a model too large for the calibration limit: out_of_memory naming the limit', async (t) => {
  const e = await t.throwsAsync(loadModelWeights(golden('llama-tiny'), 'llama-tiny', { limitBytes: 100_000 }), { instanceOf: MoeforgeError });
  t.is((e as MoeforgeError).code, 'out_of_memory');
  t.regex(e!.message, /over the 0\.1 MiB limit \(calibration_max_bytes\)/);
  const moe = await t.throwsAsync(loadModelWeights(golden('mixtral-tiny'), 'mixtral-tiny'), { instanceOf: MoeforgeError });
  t.is((moe as MoeforgeError).code, 'unsupported_format');
});
