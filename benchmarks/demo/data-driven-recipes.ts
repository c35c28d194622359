// The data-driven side of the zoo report (issue 10): calibration files drawn from the
// zoo's training distribution, the dense merge configs (each data-driven method next to
// its data-free counterpart) and the MoE recipe with `enhance:` on its experts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { Rng } from '../../core/rng.js';
import { TASK_NAMES, testSet, trainSampler, zooTasks, type TaskName } from '../zoo/tasks.js';
import { MOE_VARIANTS, moeRecipe } from './recipes.js';

export type Zoo = Record<'base' | TaskName, string>;

/** Calibration files of one expert: full samples (loss-based methods) and questions alone (DivMerge's unlabelled inputs). */
export interface CalibrationFiles {
  text: string;
  prompts: string;
}

export interface CalibrationDraw {
  /** JSONL lines {"text": question + answer}. */
  text: string[];
  /** JSONL lines {"text": question}. */
  prompts: string[];
  /** How many drawn questions are in the committed held-out test file (0 for the ciphers; facts: its test set is its table). */
  inTestSet: number;
}

/**
 * `count` fresh training samples of a task from a seed of their own (never a held-out
 * question: the trainer's filter), checked against the committed test file as well.
 * The facts task's test set is its whole table (memorisation, tasks.ts), so its
 * calibration samples are necessarily table entries; the count says so.
 */
export function drawCalibration(task: TaskName, zooSeed: number, testSize: number, zooDir: string, count: number): CalibrationDraw {
  const tasks = zooTasks(zooSeed);
  const rng = new Rng(zooSeed).derive(`demo/data-driven/calibration/${task}`);
  const sample = trainSampler(tasks[task], testSet(tasks[task], zooSeed, testSize), rng);
  const testFile = path.join(zooDir, 'data', `${task}.test.jsonl`);
  const held = new Set(
    readFileSync(testFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => (JSON.parse(l) as { question: string }).question),
  );
  const samples = Array.from({ length: count }, () => sample());
  return {
    text: samples.map((s) => JSON.stringify({ text: s.question + s.answer })),
    prompts: samples.map((s) => JSON.stringify({ text: s.question })),
    inTestSet: samples.filter((s) => held.has(s.question)).length,
  };
}

/** Calibration parameters shared by every model of a data-driven merge. */
export const CALIBRATION = { samples: 32, seqLen: 32, seed: 0 } as const;

export interface DenseMerge {
  name: string;
  /** The data-free merge it is compared with (null for the data-free ones). */
  counterpart: string | null;
  config: string;
}

function mergeConfig(
  name: string,
  method: string,
  zoo: Zoo,
  perModel: (n: TaskName) => Record<string, unknown>,
  global: Record<string, unknown>,
): string {
  const config = {
    merge_method: method,
    base_model: zoo.base,
    models: TASK_NAMES.map((n) => ({ model: zoo[n], parameters: perModel(n) })),
    parameters: global,
    dtype: 'float32',
  };
  return `# moeforge data-driven demo: ${name}\n${stringify(config)}`;
}

/**
 * The dense merges. TIES and task arithmetic are the data-free references (mergekit's
 * parameters, as in the demo); task arithmetic at weight 1/4 is DivMerge's starting point.
 */
export function denseMerges(zoo: Zoo, cal: Record<TaskName, CalibrationFiles>): DenseMerge[] {
  const calib = (file: string) => ({
    calibration: file,
    calibration_samples: CALIBRATION.samples,
    calibration_seq_len: CALIBRATION.seqLen,
    calibration_seed: CALIBRATION.seed,
  });
  const n = TASK_NAMES.length;
  return [
    { name: 'ties', counterpart: null, config: mergeConfig('ties', 'ties', zoo, () => ({ density: 0.5, weight: 1 }), { normalize: true }) },
    {
      name: 'sens-ties',
      counterpart: 'ties',
      config: mergeConfig('sens-ties', 'sens', zoo, (t) => ({ density: 0.5, ...calib(cal[t].text) }), { base_method: 'ties', temperature: 1, normalize: true }),
    },
    { name: 'task-arithmetic', counterpart: null, config: mergeConfig('task-arithmetic', 'task_arithmetic', zoo, () => ({ weight: 1 }), {}) },
    { name: `task-arithmetic-w${(1 / n).toFixed(2)}`, counterpart: null, config: mergeConfig(`task-arithmetic-w${(1 / n).toFixed(2)}`, 'task_arithmetic', zoo, () => ({ weight: 1 / n }), {}) },
    {
      name: 'divmerge',
      counterpart: 'task-arithmetic',
      config: mergeConfig('divmerge', 'divmerge', zoo, (t) => calib(cal[t].prompts), { granularity: 'model', steps: 50, learning_rate: 0.05, continuation_tokens: 6 }),
    },
    {
      name: 'led',
      counterpart: 'task-arithmetic',
      config: mergeConfig('led', 'led', zoo, (t) => ({ weight: 1, ...calib(cal[t].text) }), { r: 0.5, lambda: 1 }),
    },
  ];
}

/** Threshold of the enhanced MoE: a layer is kept when reverting it raises the expert's loss (mean cross-entropy, nats) by at least this much. */
export const ENHANCE_THRESHOLD = 0.01;

/**
 * The demo's moe-base (hidden gates, base shared weights) with plain experts, or with
 * `enhance:` on every expert (calibration = that expert's training samples).
 */
export function moeRecipes(zoo: Zoo, prompts: Record<TaskName, string[]>, cal: Record<TaskName, CalibrationFiles>): { plain: string; enhanced: string } {
  const v = MOE_VARIANTS.find((m) => m.name === 'moe-base')!;
  const plain = moeRecipe(v, zoo, prompts, 1);
  const recipe = parse(plain) as { experts: { source_model: string; enhance?: unknown }[] };
  for (const [i, t] of TASK_NAMES.entries()) {
    recipe.experts[i]!.enhance = { threshold: ENHANCE_THRESHOLD, calibration: cal[t].text, samples: CALIBRATION.samples, seq_len: CALIBRATION.seqLen, seed: CALIBRATION.seed };
  }
  return { plain, enhanced: `# moeforge data-driven demo: moe-base with enhanced experts\n${stringify(recipe)}` };
}
