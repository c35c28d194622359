// `sens`: Sens-Merging (Liu et al. 2025, "Sens-Merging: Sensitivity-Guided Parameter Balancing
// for Merging Large Language Models", https://arxiv.org/abs/2502.12420): per-layer weights of
// task arithmetic, TIES or DARE (`base_method`) from calibration data.
// Following the paper:
//   - layer sensitivity s_i^l = Σ over layer l's weights of |θ ⊙ ∇θ L_i|, model i's gradient of
//     its own loss on its own calibration data (§3.2, the first-order Taylor importance);
//   - normalised across the layers of each model;
//   - multiplied by a cross-model transferability factor from logits alignment (§3.3);
//   - coefficients α_i^l = softmax over models of (ŝ_i^l · τ_i) / T, so Σ_i α_i^l = 1 in every
//     layer, used as the layer's per-model weights of the base method (λ scales the sum).
// Our concrete choices where the paper leaves room:
//   - layer normalisation ŝ_i^l = L · s_i^l / Σ_l s_i^l (mean 1, so T is on a scale independent
//     of the model size);
//   - alignment a(i, j) = mean centred cosine similarity of model i's and model j's logits on
//     j's calibration tokens (experts/importance/transferability.ts); τ_i = (1 + mean_{j≠i} a(i, j)) / 2
//     in [0, 1] (τ_i = 1 with a single model);
//   - tensors outside the layers (embeddings, final norm, lm_head) take the mean over layers of α_i^l;
//   - loss = mean next-token cross-entropy of the samples.
// Parameters: global base_method (task_arithmetic | ties | dare_ties | dare_linear, default
// ties), temperature (> 0, default 1), lambda (1), normalize and rescale (the base method's
// defaults), calibration_max_bytes; per model density (1) and the calibration data.
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod, MergePrepareContext } from '../../core/plugins.js';
import { CALIBRATION_PARAMETER_DEFS } from '../importance/calibration.js';
import { disposeWeights, importance, rowLogits, weightTensors } from '../importance/gradients.js';
import { checkMemory, loadModelWeights, type ModelWeights } from '../importance/model-weights.js';
import { CALIBRATION_GLOBAL_DEFS, calibrationLimit, modelCalibrationRows } from '../importance/prepare-data.js';
import { dataAlignment } from '../importance/transferability.js';
import { dareLinear } from './dare-linear.js';
import { dareTies } from './dare-ties.js';
import { modelPrefix, parseParams } from './params.js';
import { taskArithmetic } from './task-arithmetic.js';
import { ties } from './ties.js';

const BASE_METHODS: Record<string, MergeMethod> = { task_arithmetic: taskArithmetic, ties, dare_ties: dareTies, dare_linear: dareLinear };

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const globalSchema = z.object({
  base_method: z.string().refine((v) => v in BASE_METHODS, `base_method must be one of ${Object.keys(BASE_METHODS).join(', ')}`).default('ties'),
  temperature: finite.refine((v) => v > 0, 'temperature must be > 0').default(1),
});
const modelSchema = z.object({ density: finite.default(1) });

function parseAll(global: Record<string, unknown>, perModel: Record<string, unknown>[]) {
  const g = parseParams(globalSchema, { base_method: global.base_method, temperature: global.temperature }, 'parameters.');
  const pm = perModel.map((p, i) => parseParams(modelSchema, { density: p.density }, modelPrefix(i)));
  return { g, pm, base: BASE_METHODS[g.base_method]! };
}

/** The base method's parameters for one tensor with the given per-model weights. */
function baseParams(global: Record<string, unknown>, perModel: Record<string, unknown>[], weights: number[]) {
  const g: Record<string, unknown> = {};
  for (const k of ['lambda', 'normalize', 'rescale'] as const) if (global[k] !== undefined) g[k] = global[k];
  return { global: g, perModel: perModel.map((p, i) => ({ weight: weights[i]!, density: p.density ?? 1 })) };
}

/** softmax over models of x_i / T. */
export function softmax(x: number[], temperature: number): number[] {
  const m = Math.max(...x.map((v) => v / temperature));
  const e = x.map((v) => Math.exp(v / temperature - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export interface SensPrepared {
  /** Raw layer sensitivities s_i^l, [model][layer]. */
  sensitivity: number[][];
  /** Transferability τ_i. */
  transferability: number[];
  /** α_i^l, [layer][model]: each row sums to 1. */
  layerCoefficients: number[][];
  /** For tensors outside the layers: the mean over layers, [model]. */
  globalCoefficients: number[];
}

/** Sens' coefficients from the sensitivities and transferabilities (pure; see the header for the formulas). */
export function sensCoefficients(sensitivity: number[][], transferability: number[], temperature: number): Omit<SensPrepared, 'sensitivity' | 'transferability'> {
  const layers = sensitivity[0]?.length ?? 0;
  const normalised = sensitivity.map((s) => {
    const total = s.reduce((a, b) => a + b, 0);
    return s.map((v) => (total > 0 ? (layers * v) / total : 1));
  });
  const layerCoefficients = Array.from({ length: layers }, (_, l) => softmax(normalised.map((s, i) => s[l]! * transferability[i]!), temperature));
  const globalCoefficients = sensitivity.map((_, i) => layerCoefficients.reduce((a, row) => a + row[i]!, 0) / Math.max(1, layers));
  return { layerCoefficients, globalCoefficients };
}

async function logitsOf(m: ModelWeights, rows: number[][]): Promise<Float32Array[]> {
  const w = weightTensors(m);
  try {
    return await rowLogits(m, w, rows);
  } finally {
    disposeWeights(w);
  }
}

async function prepare(ctx: MergePrepareContext): Promise<SensPrepared> {
  const { g } = parseAll(ctx.global, ctx.perModel);
  const limit = calibrationLimit(ctx.global);
  const rows = await modelCalibrationRows(ctx);
  const n = ctx.modelFolders.length;
  const sensitivity: number[][] = [];
  // Each model's logits on its own data, kept for the alignment of the others (bounded by the limit).
  const own: Float32Array[][] = [];
  let vocab = 0;
  let ownBytes = 0;
  for (const [i, folder] of ctx.modelFolders.entries()) {
    const m = await loadModelWeights(folder, ctx.modelRefs[i]!, { limitBytes: limit });
    vocab = m.config.vocabSize;
    sensitivity.push((await importance(m, rows[i]!, `sensitivity ${ctx.modelRefs[i]}`)).layerSums);
    if (n > 1) {
      ownBytes += 4 * vocab * rows[i]!.reduce((s, r) => s + r.length, 0);
      checkMemory(ctx.modelRefs[i]!, ownBytes, limit, "sens' logits on the calibration data");
      own.push(await logitsOf(m, rows[i]!));
    }
  }
  // τ_i from model i's logits on every other model's data, computed pass by pass (nothing kept).
  const transferability: number[] = [];
  for (const [i, folder] of ctx.modelFolders.entries()) {
    if (n === 1) {
      transferability.push(1);
      break;
    }
    const m = await loadModelWeights(folder, ctx.modelRefs[i]!, { limitBytes: limit });
    let s = 0;
    for (let j = 0; j < n; j++) if (j !== i) s += dataAlignment(await logitsOf(m, rows[j]!), own[j]!, vocab);
    transferability.push((1 + s / (n - 1)) / 2);
  }
  const coeffs = sensCoefficients(sensitivity, transferability, g.temperature);
  ctx.modelRefs.forEach((ref, i) => ctx.note(`sens: ${ref} transferability ${transferability[i]!.toFixed(3)}`));
  coeffs.layerCoefficients.forEach((row, l) =>
    ctx.note(`sens: layer ${l} weights ${row.map((a, i) => `${ctx.modelRefs[i]} ${a.toFixed(3)}`).join(', ')} (${g.base_method})`),
  );
  return { sensitivity, transferability, ...coeffs };
}

export const sens: MergeMethod = {
  name: 'sens',
  reference: 'Sens-Merging, Liu et al. 2025, https://arxiv.org/abs/2502.12420',
  requiresBase: true,
  globalParameterDefs: [
    { name: 'base_method', default: 'ties' },
    { name: 'temperature', default: 1 },
    { name: 'lambda' },
    { name: 'normalize' },
    { name: 'rescale' },
    ...CALIBRATION_GLOBAL_DEFS,
  ],
  modelParameterDefs: [{ name: 'density', default: 1 }, ...CALIBRATION_PARAMETER_DEFS],
  globalParameters: globalSchema,
  modelParameters: modelSchema,
  validate(global, perModel, hasBase) {
    if (!hasBase) throw new MoeforgeError('invalid_recipe', 'sens needs a base_model', { path: 'base_model' });
    const { base } = parseAll(global, perModel);
    const p = baseParams(global, perModel, perModel.map(() => 1));
    base.validate(p.global, p.perModel, hasBase);
  },
  prepare,
  async mergeTensor(input, write) {
    const { base } = parseAll(input.global, input.perModel);
    const prep = input.prepared as SensPrepared | undefined;
    if (!prep) throw new Error(`sens: no coefficients for ${input.tensorName} (mergeTensor called without the calibration pre-pass, MergeMethod.prepare)`);
    const weights = input.layer === undefined ? prep.globalCoefficients : prep.layerCoefficients[input.layer]!;
    const p = baseParams(input.global, input.perModel, weights);
    await base.mergeTensor({ ...input, global: p.global, perModel: p.perModel }, write);
  },
};
