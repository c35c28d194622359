// `neuro`: NeuroMerging (Fang et al. 2025, "To See a World in a Spark of Neuron: Disentangling
// Multi-Task Interference for Training-Free Model Merging", https://arxiv.org/abs/2503.05320).
// Each output neuron (row r of a [out, in] weight; a 1-D tensor is one row) has a base vector b_r.
// A task vector row τ splits into its part along b_r, c·b_r with c = τ·b_r / ‖b_r‖² (c = 0 when
// ‖b_r‖² < 1e-12), and the orthogonal rest o = τ − c·b_r. The paper finds the parallel part
// mostly rescales the neuron and the task knowledge sits in the orthogonal part, so:
//   orthogonal parts: optional magnitude trim to `density` (exact top-k over the tensor, as TIES),
//                     sign election by summed weighted mass and the disjoint mean (TIES);
//   parallel coefficients c: the same sign election and disjoint mean per row;
//   out = b + lambda_parallel · c* · b + lambda_orthogonal · o*.
// Defaults: lambda_parallel 0 (the paper's choice), lambda_orthogonal 1, weight 1, density 1.
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod, MergeTensorInput } from '../../core/plugins.js';
import { combineChunk } from './consensus.js';
import { forEachDeltaChunk, forEachModelChunk, rowLength } from './chunks.js';
import { modelPrefix, parseParams } from './params.js';
import { RadixSelector } from './select.js';
import { checkSparsifyParams, makeMask } from './sparsify.js';

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const globalSchema = z.object({ lambda_parallel: finite.default(0), lambda_orthogonal: finite.default(1) });
const modelSchema = z.object({ weight: finite.default(1), density: finite.default(1) });

function parseAll(global: Record<string, unknown>, perModel: Record<string, unknown>[]) {
  const g = parseParams(globalSchema, global, 'parameters.');
  const pm = perModel.map((p, i) => parseParams(modelSchema, p, modelPrefix(i)));
  pm.forEach((p, i) => checkSparsifyParams('magnitude', { density: p.density, gamma: 0, epsilon: 0 }, modelPrefix(i)));
  return { g, pm };
}

/** Splits each row of every delta into its parallel coefficient (returned) and the orthogonal rest (in place). */
export function splitRows(base: Float32Array, deltas: Float32Array[], cols: number): Float64Array[] {
  const rows = base.length / cols;
  const coeffs = deltas.map(() => new Float64Array(rows));
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let bb = 0;
    for (let k = 0; k < cols; k++) bb += base[o + k]! * base[o + k]!;
    deltas.forEach((d, i) => {
      if (bb < 1e-12) return;
      let tb = 0;
      for (let k = 0; k < cols; k++) tb += d[o + k]! * base[o + k]!;
      const c = tb / bb;
      coeffs[i]![r] = c;
      for (let k = 0; k < cols; k++) d[o + k] = d[o + k]! - c * base[o + k]!;
    });
  }
  return coeffs;
}

/** TIES-style disjoint mean of weighted scalars: the sum of those agreeing with the elected sign over their weights. */
export function electedMean(values: number[], weights: number[]): number {
  let total = 0;
  values.forEach((v, i) => (total += weights[i]! * v));
  const positive = total >= 0;
  let mixed = 0;
  let div = 0;
  values.forEach((v, i) => {
    const wv = weights[i]! * v;
    if (positive ? wv > 0 : wv < 0) {
      mixed += wv;
      div += weights[i]!;
    }
  });
  return mixed / (div === 0 ? 1 : div);
}

export const neuro: MergeMethod = {
  name: 'neuro',
  reference: 'NeuroMerging, Fang et al. 2025, https://arxiv.org/abs/2503.05320',
  requiresBase: true,
  globalParameterDefs: [
    { name: 'lambda_parallel', default: 0 },
    { name: 'lambda_orthogonal', default: 1 },
  ],
  modelParameterDefs: [
    { name: 'weight', default: 1 },
    { name: 'density', default: 1 },
  ],
  globalParameters: globalSchema,
  modelParameters: modelSchema,
  validate(global, perModel, hasBase) {
    if (!hasBase) throw new MoeforgeError('invalid_recipe', 'neuro needs a base_model', { path: 'base_model' });
    parseAll(global, perModel);
  },
  async mergeTensor(input: MergeTensorInput, write) {
    const { g, pm } = parseAll(input.global, input.perModel);
    if (!input.base) throw new MoeforgeError('invalid_recipe', 'neuro needs a base_model', { path: 'base_model' });
    const base = input.base;
    if (input.models.length === 0) {
      await forEachModelChunk(input, [base], (start, [b]) => write(start, b!));
      return;
    }
    const n = input.numel;
    const cols = rowLength(input.shape, n);
    const masks = pm.map((p) =>
      makeMask('magnitude', { density: p.density, gamma: 0, epsilon: 0 }, n, input.rng, input.tensorName),
    );
    const selectors = masks.map((m) => (m.ranks.length ? new RadixSelector(n, m.ranks) : undefined));
    if (selectors.some((s) => s)) {
      for (const phase of ['high', 'low'] as const) {
        await forEachDeltaChunk(input, base, input.models, ({ base: b, deltas }) => {
          splitRows(b, deltas, cols);
          selectors.forEach((s, i) => (phase === 'high' ? s?.addHigh(deltas[i]!) : s?.addLow(deltas[i]!)));
        });
        if (phase === 'high') selectors.forEach((s) => s?.finishHigh());
      }
      selectors.forEach((s, i) => s && masks[i]!.setBoundaries(s.boundaries()));
    }
    masks.forEach((m) => m.reset());
    const weights = pm.map((p) => p.weight);
    await forEachDeltaChunk(input, base, input.models, async ({ start, base: b, deltas }) => {
      const coeffs = splitRows(b, deltas, cols);
      deltas.forEach((d, i) => masks[i]!.apply(d, cols));
      const out = new Float32Array(b.length);
      // Orthogonal parts: TIES sign election + disjoint mean, scaled by lambda_orthogonal.
      combineChunk(out, b, deltas, weights, { consensus: 'sum', normalize: true, lambda: g.lambda_orthogonal });
      if (g.lambda_parallel !== 0) {
        for (let r = 0; r < b.length / cols; r++) {
          const c = electedMean(coeffs.map((cf) => cf[r]!), weights) * g.lambda_parallel;
          for (let k = r * cols; k < (r + 1) * cols; k++) out[k] = out[k]! + c * b[k]!;
        }
      }
      await write(start, out);
    });
  },
};
