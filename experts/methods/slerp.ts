// `slerp`: spherical linear interpolation between the base model (t = 0) and one other
// model (t = 1), over the whole tensor as one vector, as mergekit's SlerpMerge
// (mergekit/merge_methods/slerp.py; Shoemake 1985, https://doi.org/10.1145/325165.325242):
// the angle comes from the normalised tensors (a norm ≤ 1e-8 is left as is); when
// |cos θ| > 0.9995 it falls back to linear interpolation of the originals; otherwise
// sin((1−t)θ)/sin θ · v0 + sin(tθ)/sin θ · v1 on the originals. Two passes: the norms and
// dot product, then the blend.
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod } from '../../core/plugins.js';
import { forEachModelChunk } from './chunks.js';
import { parseParams } from './params.js';

const globalSchema = z.object({ t: z.number().refine(Number.isFinite, 'expected a finite number') });
const modelSchema = z.object({});
const DOT_THRESHOLD = 0.9995;
const EPS = 1e-8;

function checkCount(perModel: unknown[], hasBase: boolean): void {
  if (!hasBase || perModel.length !== 1) {
    const total = perModel.length + (hasBase ? 1 : 0);
    throw new MoeforgeError(
      'invalid_parameter',
      `slerp merges exactly two models (base_model and one other), got ${total}${hasBase ? '' : ' and no base_model'}`,
      { path: 'models' },
    );
  }
}

/** The two blend factors for one tensor, from ‖v0‖², ‖v1‖², v0·v1. */
export function slerpFactors(t: number, n0sq: number, n1sq: number, dot01: number): [number, number] {
  const n0 = Math.sqrt(n0sq);
  const n1 = Math.sqrt(n1sq);
  const dot = dot01 / ((n0 > EPS ? n0 : 1) * (n1 > EPS ? n1 : 1));
  if (Math.abs(dot) > DOT_THRESHOLD) return [1 - t, t];
  const theta0 = Math.acos(dot);
  const sin0 = Math.sin(theta0);
  return [Math.sin(theta0 - theta0 * t) / sin0, Math.sin(theta0 * t) / sin0];
}

export const slerp: MergeMethod = {
  name: 'slerp',
  reference: 'Shoemake 1985 slerp, https://doi.org/10.1145/325165.325242 (mergekit slerp)',
  requiresBase: true,
  globalParameterDefs: [{ name: 't', required: true }],
  modelParameterDefs: [],
  globalParameters: globalSchema,
  modelParameters: modelSchema,
  validate(global, perModel, hasBase) {
    checkCount(perModel, hasBase);
    parseParams(globalSchema, global, 'parameters.');
  },
  async mergeTensor(input, write) {
    checkCount(input.models, input.base !== undefined);
    const { t } = parseParams(globalSchema, input.global, 'parameters.');
    const readers = [input.base!, input.models[0]!];
    let n0 = 0;
    let n1 = 0;
    let d = 0;
    await forEachModelChunk(input, readers, (_, [a, b]) => {
      for (let i = 0; i < a!.length; i++) {
        const x = a![i]!;
        const y = b![i]!;
        n0 += x * x;
        n1 += y * y;
        d += x * y;
      }
    });
    const [s0, s1] = slerpFactors(t, n0, n1, d);
    await forEachModelChunk(input, readers, async (start, [a, b]) => {
      const out = new Float32Array(a!.length);
      for (let i = 0; i < out.length; i++) out[i] = s0 * a![i]! + s1 * b![i]!;
      await write(start, out);
    });
  },
};
