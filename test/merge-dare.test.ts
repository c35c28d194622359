// DARE (arXiv 2311.03099) statistically, over many seeds: each element is kept with
// probability `density`, and mergekit's L1 rescale makes ‖kept‖₁ = ‖δ‖₁ exactly, i.e.
// a factor of about 1/density.
import test from 'ava';
import { mergeArrays } from '../experts/methods/in-memory.js';
import { dareLinear } from '../experts/methods/dare-linear.js';

const n = 2000;
const base = new Float32Array(n);
const model = new Float32Array(n);
for (let i = 0; i < n; i++) {
  base[i] = Math.sin(i) * 0.1;
  model[i] = base[i]! + 0.01 * (1 + (i % 7)) * (i % 2 ? 1 : -1);
}
const l1 = (() => {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.abs(Math.fround(model[i]! - base[i]!));
  return s;
})();

for (const density of [0.1, 0.5, 0.9]) {
  test(`dare_linear density ${density}: kept fraction and L1 rescale over 200 seeds`, async (t) => {
    const seeds = 200;
    let keptTotal = 0;
    let scaleTotal = 0;
    const sigma = Math.sqrt((density * (1 - density)) / n);
    for (let seed = 0; seed < seeds; seed++) {
      const out = await mergeArrays(dareLinear, { base, models: [model], perModel: [{ weight: 1, density }], seed });
      let kept = 0;
      let after = 0;
      let unscaled = 0;
      for (let i = 0; i < n; i++) {
        const d = out[i]! - base[i]!;
        if (out[i] !== base[i]) {
          kept++;
          after += Math.abs(d);
          unscaled += Math.abs(model[i]! - base[i]!);
        }
      }
      const frac = kept / n;
      t.true(Math.abs(frac - density) < 5 * sigma, `seed ${seed}: kept ${frac}`);
      // The L1 mass of the task vector is restored exactly (up to float32 rounding of base + δ·s).
      t.true(Math.abs(after - l1) / l1 < 1e-4, `seed ${seed}: ‖out − base‖₁ ${after} vs ${l1}`);
      keptTotal += frac;
      scaleTotal += l1 / unscaled;
    }
    t.true(Math.abs(keptTotal / seeds - density) < 4 * (sigma / Math.sqrt(seeds)), `mean kept ${keptTotal / seeds}`);
    t.true(Math.abs((scaleTotal / seeds) * density - 1) < 0.02, `mean factor ${scaleTotal / seeds} ≈ 1/${density}`);
  });
}
