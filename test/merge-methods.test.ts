// Every merge method against values worked out by hand on small tensors.
import test from 'ava';
import { MoeforgeError } from '../core/errors.js';
import { mergeArrays } from '../experts/methods/in-memory.js';
import { linear } from '../experts/methods/linear.js';
import { taskArithmetic } from '../experts/methods/task-arithmetic.js';
import { ties } from '../experts/methods/ties.js';
import { dareLinear } from '../experts/methods/dare-linear.js';
import { dareTies } from '../experts/methods/dare-ties.js';
import { breadcrumbs } from '../experts/methods/breadcrumbs.js';
import { breadcrumbsTies } from '../experts/methods/breadcrumbs-ties.js';
import { della } from '../experts/methods/della.js';
import { dellaLinear } from '../experts/methods/della-linear.js';
import { slerp } from '../experts/methods/slerp.js';
import { modelStock } from '../experts/methods/model-stock.js';
import { neuro } from '../experts/methods/neuro.js';
import { signQuantizeRows } from '../experts/methods/sparsify.js';

const f = (xs: number[]) => new Float32Array(xs);
const close = (t: import('ava').ExecutionContext, got: Float32Array, want: number[], eps = 1e-6) => {
  t.is(got.length, want.length);
  want.forEach((w, i) => t.true(Math.abs(got[i]! - w) <= eps, `element ${i}: got ${got[i]}, want ${w}`));
};

test('linear: weighted average, normalised by the weight sum', async (t) => {
  const out = await mergeArrays(linear, { models: [f([1, 2]), f([3, 6])], perModel: [{ weight: 1 }, { weight: 3 }] });
  close(t, out, [2.5, 5]); // (1·1 + 3·3)/4, (1·2 + 3·6)/4
  const raw = await mergeArrays(linear, {
    models: [f([1, 2]), f([3, 6])],
    perModel: [{ weight: 1 }, { weight: 3 }],
    global: { normalize: false },
  });
  close(t, raw, [10, 20]);
});

test('task_arithmetic: base + lambda · Σ w·δ, not normalised by default', async (t) => {
  const base = f([1, 1, 1]);
  const models = [f([2, 0, 1]), f([1, 3, 1])]; // δ = [1, −1, 0], [0, 2, 0]
  const perModel = [{ weight: 1 }, { weight: 0.5 }];
  close(t, await mergeArrays(taskArithmetic, { base, models, perModel }), [2, 1, 1]);
  close(t, await mergeArrays(taskArithmetic, { base, models, perModel, global: { lambda: 2 } }), [3, 1, 1]);
  // normalize: Σ w·δ / Σ w = [1, 0, 0] / 1.5
  close(t, await mergeArrays(taskArithmetic, { base, models, perModel, global: { normalize: true } }), [1 + 1 / 1.5, 1, 1]);
});

test('ties: trim to top-k, sign election and disjoint mean change the result', async (t) => {
  const base = f([0, 0, 0, 0]);
  const models = [f([3, -1, 0.5, 2]), f([-2, -2, 1, 0.1]), f([-2, 4, 0.2, 0.3])];
  const perModel = models.map(() => ({ weight: 1, density: 0.5 }));
  // k = 2 each: [3,0,0,2], [−2,−2,0,0], [−2,4,0,0].
  // e0: Σ = −1 → sign −, mean of {−2, −2} = −2 (a plain mean would give −1/3).
  // e1: Σ = 2 → sign +, only 4 agrees → 4 (a plain mean gives 2/3).
  // e2: nothing kept → 0.  e3: only 2 → 2.
  close(t, await mergeArrays(ties, { base, models, perModel }), [-2, 4, 0, 2]);
  const plain = await mergeArrays(taskArithmetic, { base, models, perModel: models.map(() => ({ weight: 1 })), global: { normalize: true } });
  t.notDeepEqual(Array.from(plain), [-2, 4, 0, 2]);
});

test('ties: equal magnitudes at the threshold are kept in index order, across chunk borders', async (t) => {
  const base = f([0, 0, 0, 0, 0, 0]);
  const models = [f([1, -1, 1, -1, 0.5, 2])];
  // k = 3: 2 and two of the four 1s. Ascending order breaks ties by index, so the top k are the
  // last ones: indices 2 and 3 (chunkSize 1: every element is its own chunk).
  const out = await mergeArrays(ties, { base, models, perModel: [{ weight: 1, density: 0.5 }], chunkSize: 1 });
  close(t, out, [0, 0, 1, -1, 0, 2]);
});

test('ties: the exact threshold matches a full sort on a larger tensor, any chunk size', async (t) => {
  const n = 10007;
  const base = new Float32Array(n);
  const m = new Float32Array(n);
  let s = 7;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    base[i] = (s / 2147483648 - 0.5) * 0.1;
    m[i] = base[i]! + Math.round(((s % 1000) / 1000 - 0.5) * 64) / 64; // many ties
  }
  const density = 0.3;
  const k = Math.floor(density * n);
  const delta = Array.from(m, (v, i) => Math.fround(v - base[i]!));
  const order = delta.map((_, i) => i).sort((a, b) => Math.abs(delta[b]!) - Math.abs(delta[a]!) || b - a);
  // Descending with ties by descending index == ascending with ties by index, reversed: keep the top k.
  const kept = new Set(order.slice(0, k));
  const want = Array.from(base, (b, i) => (kept.has(i) ? Math.fround(b + delta[i]!) : b));
  for (const chunkSize of [97, 1000, 1 << 20]) {
    const out = await mergeArrays(ties, { base, models: [m], perModel: [{ weight: 1, density }], chunkSize });
    let nonzero = 0;
    for (let i = 0; i < n; i++) if (out[i] !== base[i]) nonzero++;
    t.true(nonzero <= k);
    t.deepEqual(Array.from(out), want, `chunkSize ${chunkSize}`);
  }
});

test('dare_linear: every element is dropped or rescaled by ‖δ‖₁/‖kept‖₁', async (t) => {
  const base = f([0, 0, 0, 0, 0, 0, 0, 0]);
  const d = [1, -2, 3, -4, 5, -6, 7, -8];
  const out = await mergeArrays(dareLinear, { base, models: [f(d)], perModel: [{ weight: 1, density: 0.5 }], seed: 3 });
  const kept = d.filter((_, i) => out[i] !== 0);
  t.true(kept.length > 0 && kept.length < 8);
  const scale = 36 / kept.reduce((a, v) => a + Math.abs(v), 0);
  d.forEach((v, i) => t.true(out[i] === 0 || Math.abs(out[i]! - v * scale) < 1e-5));
  // Without rescale the kept values are the originals.
  const raw = await mergeArrays(dareLinear, { base, models: [f(d)], perModel: [{ weight: 1, density: 0.5 }], seed: 3, global: { rescale: false } });
  d.forEach((v, i) => t.true(raw[i] === 0 || raw[i] === v));
  t.deepEqual(Array.from(raw).map((v) => v !== 0), Array.from(out).map((v) => v !== 0), 'same mask with the same seed');
});

test('dare_ties: drop, then sign election by mass', async (t) => {
  // density 1 → no drop: pure TIES consensus without trimming, normalize off by default.
  const base = f([0, 0]);
  const models = [f([2, -1]), f([-1, 3])];
  const out = await mergeArrays(dareTies, { base, models, perModel: [{ weight: 1, density: 1 }, { weight: 1, density: 1 }] });
  close(t, out, [2, 3]); // e0: Σ=1 → + → 2; e1: Σ=2 → + → 3
  const norm = await mergeArrays(dareTies, { base, models, perModel: [{ weight: 2, density: 1 }, { weight: 1, density: 1 }], global: { normalize: true } });
  close(t, norm, [2, 3]); // e0: 4/2; e1: Σ = −2 + 3 = 1 → + → 3/1
});

test('breadcrumbs: drops the gamma outliers and the smallest to keep density', async (t) => {
  const base = new Float32Array(10).fill(1);
  const m = f([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // δ = 1 … 10
  // n = 10, target 5, n_top = 1, n_bot = 4 → keep δ = 5 … 9.
  const out = await mergeArrays(breadcrumbs, { base, models: [m], perModel: [{ weight: 1, density: 0.5, gamma: 0.1 }] });
  close(t, out, [1, 1, 1, 1, 6, 7, 8, 9, 10, 1]);
  // gamma so large that n_bot < 0: n_top shrinks to n − target.
  const wide = await mergeArrays(breadcrumbs, { base, models: [m], perModel: [{ weight: 1, density: 0.8, gamma: 0.5 }] });
  // target 8, n_top 5, n_bot −3 → n_top 2, n_bot 0: keep δ = 1 … 8.
  close(t, wide, [2, 3, 4, 5, 6, 7, 8, 9, 1, 1]);
});

test('breadcrumbs_ties: breadcrumbs masks, then sign election', async (t) => {
  const base = f([0, 0, 0, 0]);
  const models = [f([1, 2, 3, 4]), f([-1, -2, -3, -40])];
  // Each: n_top = 1 (gamma .25), target 2, n_bot = 1 → keep ascending positions 1, 2.
  // m1 → [0,2,3,0]; m2 → [0,−2,−3,0]; Σ = 0 → + wins → [0,2,3,0].
  const perModel = models.map(() => ({ weight: 1, density: 0.5, gamma: 0.25 }));
  close(t, await mergeArrays(breadcrumbsTies, { base, models, perModel }), [0, 2, 3, 0]);
});

test('della: keep probability rises with the rank in the row (density ± epsilon)', async (t) => {
  const cols = 5;
  const base = new Float32Array(cols);
  const m = f([1, 2, 3, 4, 5]);
  // ranks 0..4 → p = 0.5 − 0.4 + 0.8·r/4 = 0.1, 0.3, 0.5, 0.7, 0.9
  const want = [0.1, 0.3, 0.5, 0.7, 0.9];
  const counts = new Array(cols).fill(0);
  const trials = 4000;
  for (let seed = 0; seed < trials; seed++) {
    const out = await mergeArrays(dellaLinear, {
      base,
      models: [m],
      shape: [1, cols],
      perModel: [{ weight: 1, density: 0.5, epsilon: 0.4 }],
      global: { rescale: false },
      seed,
    });
    out.forEach((v, i) => {
      if (v !== 0) {
        counts[i]++;
        t.is(v, m[i]!);
      }
    });
  }
  counts.forEach((c, i) => t.true(Math.abs(c / trials - want[i]!) < 0.03, `rank ${i}: ${c / trials} vs ${want[i]}`));
});

test('della: sign election + disjoint mean after MagPrune, L1 rescale restores the mass', async (t) => {
  const base = new Float32Array(4);
  const a = f([1, 1, 1, 1]);
  const out = await mergeArrays(della, { base, models: [a], perModel: [{ weight: 1, density: 0.5, epsilon: 0.1 }], seed: 5 });
  // One model: the elected mean of a kept element is the rescaled value itself; ‖out‖₁ = ‖δ‖₁ = 4.
  t.true(Math.abs(out.reduce((s, v) => s + Math.abs(v), 0) - 4) < 1e-5);
  const keptCount = out.filter((v) => v !== 0).length;
  out.forEach((v) => t.true(v === 0 || Math.abs(v - 4 / keptCount) < 1e-6));
});

test('slerp: hand-computed angles, lerp fallback for parallel tensors', async (t) => {
  const s = Math.SQRT1_2;
  close(t, await mergeArrays(slerp, { base: f([1, 0]), models: [f([0, 1])], perModel: [{}], global: { t: 0.5 } }), [s, s]);
  // Angle from the normalised tensors, blend of the originals: θ = π/2, s0 = s1 = sin(π/4).
  close(t, await mergeArrays(slerp, { base: f([1, 0]), models: [f([0, 2])], perModel: [{}], global: { t: 0.5 } }), [s, 2 * s]);
  // t = 1/3 of 90°: [cos 30°, sin 30°]
  close(t, await mergeArrays(slerp, { base: f([1, 0]), models: [f([0, 1])], perModel: [{}], global: { t: 1 / 3 } }), [Math.cos(Math.PI / 6), 0.5], 1e-6);
  // Parallel (cos θ = 1 > 0.9995): linear interpolation of [1,1] and [2,2].
  close(t, await mergeArrays(slerp, { base: f([1, 1]), models: [f([2, 2])], perModel: [{}], global: { t: 0.25 } }), [1.25, 1.25]);
});

test('model_stock: t = N cosθ / (1 + (N−1) cosθ) between the base and the models’ mean', async (t) => {
  const base = f([0, 0]);
  // Orthogonal offsets: cos 0 → t = 0 → the base.
  close(t, await mergeArrays(modelStock, { base, models: [f([1, 0]), f([0, 1])], perModel: [{}, {}] }), [0, 0]);
  // cos = 1/√2: t = 2c/(1+c); mean [1, 0.5].
  const c = Math.SQRT1_2;
  const tt = (2 * c) / (1 + c);
  close(t, await mergeArrays(modelStock, { base, models: [f([1, 0]), f([1, 1])], perModel: [{}, {}] }), [tt, tt * 0.5]);
  // filter_wise: row 0 offsets parallel (t = 1), row 1 orthogonal (t = 0).
  const fw = await mergeArrays(modelStock, {
    base: f([0, 0, 5, 5]),
    models: [f([1, 0, 6, 5]), f([3, 0, 5, 6])],
    perModel: [{}, {}],
    shape: [2, 2],
    global: { filter_wise: true },
  });
  close(t, fw, [2, 0, 5, 5]);
});

test('neuro: the orthogonal parts merge TIES-style, the parallel part only with lambda_parallel', async (t) => {
  const base = f([1, 0]);
  // τ1 = [1, 1] → c = 1, o = [0, 1];  τ2 = [0, −0.5] → c = 0, o = [0, −0.5]
  const models = [f([2, 1]), f([1, -0.5])];
  const perModel = [{}, {}];
  close(t, await mergeArrays(neuro, { base, models, perModel, shape: [1, 2] }), [1, 1]); // o*: Σ=.5 → + → 1
  // lambda_parallel 1: c* = elected mean of {1, 0} = 1 → + 1·b
  close(t, await mergeArrays(neuro, { base, models, perModel, shape: [1, 2], global: { lambda_parallel: 1 } }), [2, 1]);
  close(t, await mergeArrays(neuro, { base, models, perModel, shape: [1, 2], global: { lambda_orthogonal: 0.5 } }), [1, 0.5]);
});

test('sign quantisation (1bit): sign · mean|δ| per row', (t) => {
  const d = f([1, -3, 0, 2, 4, 4, -4, 0]);
  signQuantizeRows(d, 4);
  t.deepEqual(Array.from(d), [1.5, -1.5, 0, 1.5, 3, 3, -3, 0]);
});

test('task methods with sign_quantize merge the quantised task vectors', async (t) => {
  const base = f([0, 0, 0, 0]);
  const out = await mergeArrays(taskArithmetic, {
    base,
    models: [f([1, -3, 0, 2])],
    perModel: [{ weight: 1 }],
    shape: [1, 4],
    global: { sign_quantize: true },
  });
  close(t, out, [1.5, -1.5, 0, 1.5]);
});

test('a density that keeps nothing is a typed error naming the tensor and parameter', async (t) => {
  const e = await t.throwsAsync(
    mergeArrays(ties, { base: f([0, 0, 0]), models: [f([1, 2, 3])], perModel: [{ weight: 1, density: 0.2 }], tensorName: 'model.norm.weight' }),
  );
  t.true(e instanceof MoeforgeError);
  t.is((e as MoeforgeError).code, 'invalid_parameter');
  t.regex((e as MoeforgeError).path ?? '', /model\.norm\.weight.*density/);
});
