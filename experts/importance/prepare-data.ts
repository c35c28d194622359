// The shared first step of every data-driven method's pre-pass: each merged model's
// calibration rows (tokenised with the model's own tokenizer, or the template's when the
// model folder has none) and the memory limit of the calibration passes.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError } from '../../core/errors.js';
import type { MergePrepareContext } from '../../core/plugins.js';
import { calibrationSpec, loadCalibration } from './calibration.js';
import { DEFAULT_CALIBRATION_MAX_BYTES } from './model-weights.js';

/** Global parameter definitions every data-driven method adds. */
export const CALIBRATION_GLOBAL_DEFS = [{ name: 'calibration_max_bytes', default: DEFAULT_CALIBRATION_MAX_BYTES }] as const;

export async function tokenizerFolderFor(folder: string, fallback: string): Promise<string> {
  try {
    await access(path.join(folder, 'tokenizer.json'));
    return folder;
  } catch {
    return fallback;
  }
}

/** Calibration rows of every merged model, in `models` order. */
export async function modelCalibrationRows(ctx: MergePrepareContext): Promise<number[][][]> {
  if (ctx.modelFolders.length === 0) {
    throw new MoeforgeError('invalid_recipe', 'a data-driven merge needs at least one model besides the base', { path: 'models' });
  }
  const specs = ctx.modelRefs.map((ref, i) => calibrationSpec(ctx.perModel[i] ?? {}, ref, `${ref}: parameters.`, ctx.configDir));
  const rows: number[][][] = [];
  for (const [i, spec] of specs.entries()) {
    rows.push(await loadCalibration(spec, await tokenizerFolderFor(ctx.modelFolders[i]!, ctx.templateFolder), ctx.modelRefs[i]!));
  }
  return rows;
}

/** The calibration memory limit from the global parameters. */
export function calibrationLimit(global: Record<string, unknown>): number {
  const v = global.calibration_max_bytes ?? DEFAULT_CALIBRATION_MAX_BYTES;
  if (typeof v !== 'number' || !(v > 0)) {
    throw new MoeforgeError('invalid_parameter', `calibration_max_bytes must be a positive number of bytes (got ${JSON.stringify(v)})`, {
      path: 'parameters.calibration_max_bytes',
    });
  }
  return v;
}
