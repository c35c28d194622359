// From a sample to the text a model sees, as lm-evaluation-harness builds it
// (lm_eval/api/task.py fewshot_context + samplers.py ContextSampler):
//   description + (ex.text + target_delimiter + ex.target) joined by
//   fewshot_delimiter, + fewshot_delimiter + sample.text
// Few-shot examples are drawn with the suite seed (per task and row, so a row's
// prompt does not depend on which other rows run), never the sample itself.
import { MoeforgeError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import type { Sample } from './data.js';
import type { EvalTask } from './task.js';

export interface FewshotPool {
  samples: Sample[];
  /** The pool is the task's own data: skip the row being evaluated. */
  same: boolean;
}

/** The text a sample's target reads as in a few-shot example. */
export function targetText(task: EvalTask, sample: Sample, row: number): string {
  const t = task.docs.target(sample, row);
  if (task.type === 'multiple_choice') return task.docs.choices!(sample, row)[t as number]!;
  return String(t);
}

export function pickFewshot(task: EvalTask, pool: FewshotPool, row: number, seed: number): number[] {
  const n = task.numFewshot;
  if (n === 0) return [];
  const candidates = pool.samples.map((_, i) => i).filter((i) => !(pool.same && i === row));
  if (candidates.length < n) {
    throw new MoeforgeError(
      'invalid_data',
      `task ${task.name} asks for ${n} few-shot examples but its pool has ${candidates.length}; lower num_fewshot or give fewshot_data`,
      { path: task.fewshotFile ?? task.dataFile },
    );
  }
  const rng = new Rng(seed).derive(`fewshot/${task.name}/${row}`);
  // Partial Fisher–Yates: the first n of a seeded shuffle.
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(candidates.length - i);
    [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
  }
  return candidates.slice(0, n);
}

/** The context for one sample (before any chat template). */
export function buildContext(task: EvalTask, sample: Sample, row: number, pool: FewshotPool, seed: number): string {
  const description = task.docs.description?.(sample) ?? '';
  const shots = pickFewshot(task, pool, row, seed).map((i) => {
    const ex = pool.samples[i]!;
    return task.docs.text(ex, i) + task.targetDelimiter + targetText(task, ex, i);
  });
  const text = task.docs.text(sample, row);
  return shots.length === 0 ? description + text : description + shots.join(task.fewshotDelimiter) + task.fewshotDelimiter + text;
}
