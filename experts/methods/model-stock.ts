// `model_stock`: Model Stock (Jang et al. 2024, https://arxiv.org/abs/2403.19522) as mergekit's
// ModelStockMerge (mergekit/merge_methods/model_stock.py): offsets oᵢ = wᵢ − w₀ from the base,
// cos θ = the mean of the pairwise cosines of the offsets (‖·‖‖·‖ clamped to ≥ 1e-6, cos clamped
// to [−1, 1]), t = N cos θ / (1 + (N − 1) cos θ), out = t · mean(wᵢ) + (1 − t) · w₀. One angle for
// the whole tensor, or per row with `filter_wise: true`. Needs the base and at least two others.
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod, MergeTensorInput } from '../../core/plugins.js';
import { forEachModelChunk, rowLength } from './chunks.js';
import { boolish, parseParams } from './params.js';

const globalSchema = z.object({ filter_wise: boolish.default(false) });
const modelSchema = z.object({});

function checkCount(count: number, hasBase: boolean): void {
  if (!hasBase || count < 2) {
    throw new MoeforgeError(
      'invalid_parameter',
      `model_stock needs a base_model and at least two other models, got ${count}${hasBase ? ' besides the base' : ' and no base_model'}`,
      { path: 'models' },
    );
  }
}

/** Model Stock's interpolation factor from the offsets' Gram matrix (row-major N×N). */
export function modelStockT(gram: Float64Array, n: number): number {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const norm = Math.max(Math.sqrt(gram[i * n + i]!) * Math.sqrt(gram[j * n + j]!), 1e-6);
      sum += Math.min(1, Math.max(-1, gram[i * n + j]! / norm));
      pairs++;
    }
  }
  const cos = sum / pairs;
  return (n * cos) / (1 + (n - 1) * cos);
}

function gramOf(base: Float32Array, models: Float32Array[], from: number, to: number, gram: Float64Array): void {
  const n = models.length;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      const a = models[i]!;
      const b = models[j]!;
      for (let k = from; k < to; k++) s += (a[k]! - base[k]!) * (b[k]! - base[k]!);
      gram[i * n + j]! += s;
      if (i !== j) gram[j * n + i]! += s;
    }
  }
}

function blend(out: Float32Array, base: Float32Array, models: Float32Array[], t: number, from: number, to: number): void {
  const n = models.length;
  for (let k = from; k < to; k++) {
    let avg = 0;
    for (let j = 0; j < n; j++) avg += models[j]![k]!;
    out[k] = (t * avg) / n + (1 - t) * base[k]!;
  }
}

export const modelStock: MergeMethod = {
  name: 'model_stock',
  reference: 'Model Stock, Jang et al. 2024, https://arxiv.org/abs/2403.19522 (mergekit model_stock)',
  requiresBase: true,
  globalParameterDefs: [{ name: 'filter_wise', default: false }],
  modelParameterDefs: [],
  globalParameters: globalSchema,
  modelParameters: modelSchema,
  validate(global, perModel, hasBase) {
    checkCount(perModel.length, hasBase);
    parseParams(globalSchema, global, 'parameters.');
  },
  async mergeTensor(input: MergeTensorInput, write) {
    checkCount(input.models.length, input.base !== undefined);
    const { filter_wise } = parseParams(globalSchema, input.global, 'parameters.');
    const n = input.models.length;
    const readers = [input.base!, ...input.models];
    if (filter_wise) {
      // mergekit: norms over dim −1, i.e. one angle per row (a 1-D tensor is one row).
      const cols = rowLength(input.shape, input.numel);
      await forEachModelChunk(input, readers, async (start, [b, ...ms]) => {
        const out = new Float32Array(b!.length);
        for (let r = 0; r < out.length; r += cols) {
          const gram = new Float64Array(n * n);
          gramOf(b!, ms, r, r + cols, gram);
          blend(out, b!, ms, modelStockT(gram, n), r, r + cols);
        }
        await write(start, out);
      });
      return;
    }
    const gram = new Float64Array(n * n);
    await forEachModelChunk(input, readers, (_, [b, ...ms]) => gramOf(b!, ms, 0, b!.length, gram));
    const t = modelStockT(gram, n);
    await forEachModelChunk(input, readers, async (start, [b, ...ms]) => {
      const out = new Float32Array(b!.length);
      blend(out, b!, ms, t, 0, out.length);
      await write(start, out);
    });
  },
};
