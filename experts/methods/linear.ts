// `linear`: a weighted average of the models (Model Soups, Wortsman et al. 2022,
// https://arxiv.org/abs/2203.05482), as mergekit's LinearMerge (mergekit/merge_methods/linear.py):
// Σ wᵢ xᵢ, divided by Σ wᵢ when `normalize` (default true). No base model: the models listed
// are averaged (a base_model given but not listed is not added).
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod } from '../../core/plugins.js';
import { forEachModelChunk } from './chunks.js';
import { boolish, modelPrefix, parseParams } from './params.js';

const globalSchema = z.object({ normalize: boolish.default(true) });
const modelSchema = z.object({ weight: z.number().refine(Number.isFinite, 'expected a finite number') });

function parseAll(global: Record<string, unknown>, perModel: Record<string, unknown>[]) {
  const g = parseParams(globalSchema, global, 'parameters.');
  const pm = perModel.map((p, i) => parseParams(modelSchema, p, modelPrefix(i)));
  if (pm.length === 0) throw new MoeforgeError('invalid_recipe', 'linear needs at least one model', { path: 'models' });
  const total = pm.reduce((a, p) => a + p.weight, 0);
  if (g.normalize && total === 0) {
    throw new MoeforgeError('invalid_parameter', 'the weights sum to 0, so normalize would divide by zero', {
      path: `${modelPrefix(0)}weight`,
    });
  }
  return { g, pm, total };
}

export const linear: MergeMethod = {
  name: 'linear',
  reference: 'Model Soups, Wortsman et al. 2022, https://arxiv.org/abs/2203.05482 (mergekit linear)',
  requiresBase: false,
  globalParameterDefs: [{ name: 'normalize', default: true }],
  modelParameterDefs: [{ name: 'weight', required: true }],
  globalParameters: globalSchema,
  modelParameters: modelSchema,
  validate(global, perModel) {
    parseAll(global, perModel);
  },
  async mergeTensor(input, write) {
    const { g, pm, total } = parseAll(input.global, input.perModel);
    const div = g.normalize ? total : 1;
    await forEachModelChunk(input, input.models, async (start, values) => {
      const out = new Float32Array(values[0]!.length);
      for (let i = 0; i < out.length; i++) {
        let s = 0;
        for (let j = 0; j < values.length; j++) s += pm[j]!.weight * values[j]![i]!;
        out[i] = s / div;
      }
      await write(start, out);
    });
  },
};
