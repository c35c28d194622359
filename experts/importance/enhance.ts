// Importance-based expert enhancement: the selection idea of MIN-Merging (arXiv 2510.17890,
// which keeps the most important parts of each expert and drops the rest), made concrete:
// the importance of layer l of an expert is the rise of the expert's loss on its calibration
// data when that layer's task vector is reverted to the base,
//   rise_l = L(θ with layer l := base layer l) − L(θ);
// layers whose rise is below `enhance_threshold`, or outside the top `enhance_keep` fraction
// (⌈keep · L⌉ layers by rise), are reverted to the base before merging.
// Our concrete choices: one layer reverted at a time (no interactions); tensors outside the
// layers are never reverted; the loss is the mean next-token cross-entropy of the samples.
import { MoeforgeError } from '../../core/errors.js';
import type { ModelEnhancer } from '../../core/plugins.js';
import { calibrationSpec, loadCalibration } from './calibration.js';
import { disposeWeights, meanLoss, weightTensors } from './gradients.js';
import { loadModelWeights, type ModelWeights } from './model-weights.js';
import { calibrationLimit, tokenizerFolderFor } from './prepare-data.js';

export interface EnhanceOptions {
  threshold?: number;
  keep?: number;
}

/** The expert's loss and, per layer, the rise of that loss when the layer is reverted to the base. */
export async function layerLossRise(base: ModelWeights, model: ModelWeights, rows: number[][]): Promise<{ loss: number; rise: number[] }> {
  const w = weightTensors(model);
  try {
    const loss = await meanLoss(model, w, rows);
    const rise: number[] = [];
    for (let l = 0; l < model.config.numLayers; l++) {
      const values = new Map(model.values);
      for (const n of model.names) if (model.layers.get(n) === l) values.set(n, base.values.get(n)!);
      const wl = weightTensors(model, values);
      try {
        rise.push((await meanLoss(model, wl, rows)) - loss);
      } finally {
        disposeWeights(wl);
      }
    }
    return { loss, rise };
  } finally {
    disposeWeights(w);
  }
}

/** Checks the options; `where` prefixes the parameter path in errors. */
export function checkEnhanceOptions(o: EnhanceOptions, where: string): void {
  if (o.threshold !== undefined && !Number.isFinite(o.threshold)) {
    throw new MoeforgeError('invalid_parameter', `enhance_threshold must be a finite number (got ${o.threshold})`, { path: `${where}enhance_threshold` });
  }
  if (o.keep !== undefined && !(typeof o.keep === 'number' && o.keep > 0 && o.keep <= 1)) {
    throw new MoeforgeError('invalid_parameter', `enhance_keep must be in (0, 1] (got ${JSON.stringify(o.keep)})`, { path: `${where}enhance_keep` });
  }
}

/** Layers to revert: rise below the threshold, or outside the top ⌈keep · L⌉ by rise (ties: lower layer first). */
export function layersToRevert(rise: number[], o: EnhanceOptions): number[] {
  const revert = new Set<number>();
  if (o.threshold !== undefined) rise.forEach((r, l) => r < o.threshold! && revert.add(l));
  if (o.keep !== undefined) {
    const k = Math.ceil(o.keep * rise.length);
    const order = rise.map((r, l) => [r, l] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    order.slice(k).forEach(([, l]) => revert.add(l));
  }
  return [...revert].sort((a, b) => a - b);
}

function numberParam(v: unknown, name: string, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new MoeforgeError('invalid_parameter', `${name} must be a number (got ${JSON.stringify(v)})`, { path: `${where}${name}` });
  return v;
}

/** `enhance_threshold` / `enhance_keep` on a merge's models, for core/merge (MergeRunOptions.enhancer). */
export const layerEnhancer: ModelEnhancer = {
  modelParameterDefs: [
    { name: 'enhance_threshold' },
    { name: 'enhance_keep' },
    { name: 'calibration' },
    { name: 'calibration_samples' },
    { name: 'calibration_seq_len' },
    { name: 'calibration_seed' },
    { name: 'calibration_max_bytes' },
  ],
  wants(params, where) {
    const o = { threshold: numberParam(params.enhance_threshold, 'enhance_threshold', where), keep: numberParam(params.enhance_keep, 'enhance_keep', where) };
    checkEnhanceOptions(o, where);
    return o.threshold !== undefined || o.keep !== undefined;
  },
  async revertedLayers(ctx) {
    const o: EnhanceOptions = { threshold: numberParam(ctx.params.enhance_threshold, 'enhance_threshold', ctx.where), keep: numberParam(ctx.params.enhance_keep, 'enhance_keep', ctx.where) };
    const limit = calibrationLimit(ctx.params);
    const spec = calibrationSpec(ctx.params, ctx.ref, ctx.where, ctx.configDir);
    const rows = await loadCalibration(spec, await tokenizerFolderFor(ctx.folder, ctx.templateFolder), ctx.ref);
    const base = await loadModelWeights(ctx.baseFolder, 'base model', { limitBytes: limit, copies: 1 });
    const model = await loadModelWeights(ctx.folder, ctx.ref, { limitBytes: limit, copies: 2 });
    const { rise } = await layerLossRise(base, model, rows);
    const revert = layersToRevert(rise, o);
    const kept = rise.map((_, l) => l).filter((l) => !revert.includes(l));
    ctx.note(`enhance: ${ctx.ref} keeps layers [${kept.join(', ')}], reverts [${revert.join(', ')}] (loss rise per layer ${rise.map((r) => r.toFixed(4)).join(', ')})`);
    return revert;
  },
};
