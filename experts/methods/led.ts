// `led`: LED-Merging (Ma et al. 2025, "LED-Merging: Mitigating Safety-Utility Conflicts in
// Model Merging with Location-Election-Disjoint", https://arxiv.org/abs/2502.16770).
//   Location: importance I = |θ ⊙ ∇θ L| (experts/importance/gradients.ts) of the base and of
//             each fine-tuned model i, both on model i's calibration data (paper §3.2).
//   Election: model i keeps the elements in the top `r` fraction of both its base score and
//             its own score (paper §3.3: neurons important to the base and to the task).
//   Disjoint: an element claimed by more than one model is dropped from all of them (§3.4).
//   Merge:    base + lambda · Σ weightᵢ · maskᵢ ⊙ (modelᵢ − base)  (task arithmetic).
// Our concrete choices where the paper leaves room: a "neuron" is one weight element (the
// paper scores parameters with the same formula); the top-r cut is taken per tensor over its
// elements (exact, ties at the boundary kept); every tensor is scored, embeddings and norms
// included; the loss is the mean next-token cross-entropy of the calibration samples.
// Parameters: global r (0 < r ≤ 1, default 0.5), lambda (1), calibration_max_bytes; per model
// weight (1) and the calibration data (experts/importance/calibration.ts).
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod, MergePrepareContext } from '../../core/plugins.js';
import { CALIBRATION_PARAMETER_DEFS } from '../importance/calibration.js';
import { importance } from '../importance/gradients.js';
import { loadModelWeights } from '../importance/model-weights.js';
import { CALIBRATION_GLOBAL_DEFS, calibrationLimit, modelCalibrationRows } from '../importance/prepare-data.js';
import { forEachDeltaChunk } from './chunks.js';
import { modelPrefix, parseParams } from './params.js';

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const globalSchema = z.object({
  r: finite.refine((v) => v > 0 && v <= 1, 'r must be in (0, 1]').default(0.5),
  lambda: finite.default(1),
});
const modelSchema = z.object({ weight: finite.default(1) });

function parseAll(global: Record<string, unknown>, perModel: Record<string, unknown>[]) {
  return {
    g: parseParams(globalSchema, { r: global.r, lambda: global.lambda }, 'parameters.'),
    pm: perModel.map((p, i) => parseParams(modelSchema, { weight: p.weight }, modelPrefix(i))),
  };
}

/** Elements of `scores` in its top `r` fraction (k = ⌈r·n⌉; every element tied with the k-th is kept). */
export function topFraction(scores: Float32Array, r: number): Uint8Array {
  const n = scores.length;
  const k = Math.min(n, Math.max(1, Math.ceil(r * n)));
  const sorted = Float32Array.from(scores).sort();
  const cut = sorted[n - k]!;
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) keep[i] = scores[i]! >= cut ? 1 : 0;
  return keep;
}

/** LED's election for one model: the elements in the top r of both its base score and its own score. */
export function electedMask(baseScore: Float32Array, modelScore: Float32Array, r: number): Uint8Array {
  const a = topFraction(baseScore, r);
  const b = topFraction(modelScore, r);
  for (let j = 0; j < a.length; j++) a[j] = a[j]! & b[j]!;
  return a;
}

/** LED's disjoint step, in place: an element kept by more than one model is dropped from all. */
export function makeDisjoint(masks: Uint8Array[]): Uint8Array[] {
  const n = masks[0]?.length ?? 0;
  for (let j = 0; j < n; j++) {
    let claims = 0;
    for (const m of masks) claims += m[j]!;
    if (claims > 1) for (const m of masks) m[j] = 0;
  }
  return masks;
}

/** Election then disjoint for one tensor (baseScores[i]: the base on model i's data). The masks are pairwise disjoint. */
export function ledMasks(baseScores: Float32Array[], modelScores: Float32Array[], r: number): Uint8Array[] {
  return makeDisjoint(modelScores.map((s, i) => electedMask(baseScores[i]!, s, r)));
}

export interface LedPrepared {
  /** Tensor name → one mask per model. */
  masks: Map<string, Uint8Array[]>;
}

async function prepare(ctx: MergePrepareContext): Promise<LedPrepared> {
  const { g } = parseAll(ctx.global, ctx.perModel);
  const limit = calibrationLimit(ctx.global);
  if (!ctx.baseFolder) throw new MoeforgeError('invalid_recipe', 'led needs a base_model', { path: 'base_model' });
  const rows = await modelCalibrationRows(ctx);
  const base = await loadModelWeights(ctx.baseFolder, 'base model', { limitBytes: limit });
  const electedBy = new Map<string, Uint8Array[]>(); // top-r of both, before the disjoint step
  for (const [i, folder] of ctx.modelFolders.entries()) {
    const ref = ctx.modelRefs[i]!;
    const baseImp = await importance(base, rows[i]!, `base on ${ref}`);
    const model = await loadModelWeights(folder, ref, { limitBytes: limit });
    const modelImp = await importance(model, rows[i]!, `gradients ${ref}`);
    for (const name of base.names) {
      const list = electedBy.get(name) ?? [];
      const s = modelImp.scores.get(name);
      if (!s) throw new MoeforgeError('missing_tensor', `${ref} has no such tensor`, { path: name });
      list.push(electedMask(baseImp.scores.get(name)!, s, g.r));
      electedBy.set(name, list);
    }
  }
  const masks = new Map<string, Uint8Array[]>();
  const kept = ctx.modelRefs.map(() => [0, 0]);
  let total = 0;
  for (const [name, elected] of electedBy) {
    const disjoint = makeDisjoint(elected.map((m) => m.slice()));
    masks.set(name, disjoint);
    total += elected[0]!.length;
    elected.forEach((m, i) => {
      for (let j = 0; j < m.length; j++) {
        kept[i]![0] += m[j]!;
        kept[i]![1] += disjoint[i]![j]!;
      }
    });
  }
  ctx.modelRefs.forEach((ref, i) => {
    const pct = (x: number) => `${((100 * x) / Math.max(1, total)).toFixed(1)}%`;
    ctx.note(`led: ${ref} elects ${pct(kept[i]![0]!)} of the weights (top ${g.r} of base and model importance), keeps ${pct(kept[i]![1]!)} after the disjoint step`);
  });
  return { masks };
}

export const led: MergeMethod = {
  name: 'led',
  reference: 'LED-Merging, Ma et al. 2025, https://arxiv.org/abs/2502.16770',
  requiresBase: true,
  globalParameterDefs: [{ name: 'r', default: 0.5 }, { name: 'lambda', default: 1 }, ...CALIBRATION_GLOBAL_DEFS],
  modelParameterDefs: [{ name: 'weight', default: 1 }, ...CALIBRATION_PARAMETER_DEFS],
  globalParameters: globalSchema,
  modelParameters: modelSchema,
  validate(global, perModel, hasBase) {
    if (!hasBase) throw new MoeforgeError('invalid_recipe', 'led needs a base_model', { path: 'base_model' });
    parseAll(global, perModel);
  },
  prepare,
  async mergeTensor(input, write) {
    const { g, pm } = parseAll(input.global, input.perModel);
    if (!input.base) throw new MoeforgeError('invalid_recipe', 'led needs a base_model', { path: 'base_model' });
    const masks = (input.prepared as LedPrepared | undefined)?.masks.get(input.tensorName);
    if (!masks) throw new Error(`led: no masks for ${input.tensorName} (mergeTensor called without the calibration pre-pass, MergeMethod.prepare)`);
    await forEachDeltaChunk(input, input.base, input.models, async ({ start, base, deltas }) => {
      const out = new Float32Array(base.length);
      for (let j = 0; j < out.length; j++) {
        let s = 0;
        for (let i = 0; i < deltas.length; i++) if (masks[i]![start + j]) s += pm[i]!.weight * deltas[i]![j]!;
        out[j] = base[j]! + g.lambda * s;
      }
      await write(start, out);
    });
  },
};
