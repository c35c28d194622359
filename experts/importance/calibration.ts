// Calibration data of a data-driven merge (issue 10): per model, a text file (one sample
// per line) or JSONL (lines that are strings or objects with a "text" field, the usual
// layout of HF text datasets), a sample count, a sequence length and a seed. Given in a
// merge config as parameters, so mergekit's schema stays as it is and the usual lookup
// (the model's own block, then the top-level one) applies:
//   calibration: data/math.txt     calibration_samples: 16
//   calibration_seq_len: 64        calibration_seed: 0
// Samples are drawn without replacement by a seeded shuffle, tokenised with the model's
// tokenizer (BOS as the tokenizer adds it) and truncated to the sequence length.
import path from 'node:path';
import { MoeforgeError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { readTextSamples } from '../../core/data/text-samples.js';

export interface CalibrationSpec {
  /** Absolute path of the text or JSONL file. */
  file: string;
  samples: number;
  seqLen: number;
  seed: number;
}

export const CALIBRATION_DEFAULTS = { samples: 16, seqLen: 64, seed: 0 } as const;

/** The parameter definitions every data-driven method adds (per model, falling back to the global block). */
export const CALIBRATION_PARAMETER_DEFS = [
  { name: 'calibration' },
  { name: 'calibration_samples', default: CALIBRATION_DEFAULTS.samples },
  { name: 'calibration_seq_len', default: CALIBRATION_DEFAULTS.seqLen },
  { name: 'calibration_seed', default: CALIBRATION_DEFAULTS.seed },
] as const;

function wholeNumber(v: unknown, min: number, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new MoeforgeError('invalid_parameter', `expected a whole number >= ${min} (got ${JSON.stringify(v)})`, { path: where });
  }
  return v;
}

/**
 * The calibration spec of one model from its resolved parameters. `modelRef` names the
 * model in the error when no file is given; `baseDir` resolves relative paths (the config's folder).
 */
export function calibrationSpec(params: Record<string, unknown>, modelRef: string, where: string, baseDir: string): CalibrationSpec {
  const file = params.calibration;
  if (file === undefined || file === null || file === '') {
    throw new MoeforgeError('invalid_parameter', `no calibration data for ${modelRef}: set parameters.calibration to a text or JSONL file`, {
      path: `${where}calibration`,
    });
  }
  if (typeof file !== 'string') {
    throw new MoeforgeError('invalid_parameter', `calibration must be a file path (got ${JSON.stringify(file)})`, { path: `${where}calibration` });
  }
  return {
    file: path.resolve(baseDir, file),
    samples: wholeNumber(params.calibration_samples ?? CALIBRATION_DEFAULTS.samples, 1, `${where}calibration_samples`),
    seqLen: wholeNumber(params.calibration_seq_len ?? CALIBRATION_DEFAULTS.seqLen, 2, `${where}calibration_seq_len`),
    seed: wholeNumber(params.calibration_seed ?? CALIBRATION_DEFAULTS.seed, 0, `${where}calibration_seed`),
  };
}

/** Every sample of a calibration file, in file order. `modelRef` names whose data it is in errors. */
export function readCalibrationTexts(file: string, modelRef: string): Promise<string[]> {
  return readTextSamples(file, `the calibration file of ${modelRef}`);
}

/** `samples` of the texts (all of them when fewer), drawn by a seeded Fisher–Yates shuffle. */
export function pickSamples(texts: string[], count: number, seed: number): string[] {
  const idx = texts.map((_, i) => i);
  const rng = new Rng(seed).derive('calibration');
  for (let i = idx.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, Math.min(count, idx.length)).map((i) => texts[i]!);
}

/** Token rows (each 2..seqLen tokens) of one model's calibration data. */
export async function loadCalibration(spec: CalibrationSpec, tokenizerFolder: string, modelRef: string): Promise<number[][]> {
  const texts = pickSamples(await readCalibrationTexts(spec.file, modelRef), spec.samples, spec.seed);
  const tokenizer = await Tokenizer.fromFolder(tokenizerFolder);
  const rows = texts.map((t) => tokenizer.encode(t).slice(0, spec.seqLen)).filter((r) => r.length >= 2);
  if (rows.length === 0) {
    throw new MoeforgeError('invalid_data', `the calibration samples of ${modelRef} are all shorter than 2 tokens: nothing to predict`, {
      path: spec.file,
    });
  }
  return rows;
}
