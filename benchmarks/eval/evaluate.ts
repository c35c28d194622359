// The harness: resolve a suite's tasks, load and check their data (before any model
// is loaded, so a broken suite fails fast with one line), then run every task on
// every model in turn. A model that fails to load or to run records its error and
// the others still get their results. Everything random takes the suite seed, so
// results.json is byte-identical across runs with the same inputs.
import path from 'node:path';
import { CausalLM, type LoadOptions } from '../../core/model/causal-lm.js';
import { MoeforgeError, isMoeforgeError } from '../../core/errors.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { loadSamples, type Sample } from './data.js';
import type { FewshotPool } from './prompts.js';
import { buildResults, type EvalResults, type ModelRecord, type TaskResultMap } from './results.js';
import { runTask } from './runners.js';
import { CausalLMScorer, type RoutingStats, type Scorer } from './scorer.js';
import type { Suite } from './suite.js';
import { resolveTask, type EvalTask } from './task.js';
import { checkColumns } from './template.js';

export interface EvalModel {
  /** Column name in tables and charts. */
  name: string;
  /** As the user gave it (folder or Hub id). */
  ref: string;
  revision: string | null;
  load(): Promise<Scorer>;
}

export interface EvalOptions {
  /** First N samples of each task (lm-eval's --limit). */
  limit?: number;
  /** Overrides the suite's seed. */
  seed?: number;
  batchSize?: number;
  /** How the suite file is named in results.json (default: its base name). */
  suiteLabel?: string;
  onProgress?: (event: { model: string; task: string; done: number; total: number }) => void;
  onModelError?: (model: string, error: MoeforgeError) => void;
}

export interface PreparedTask {
  task: EvalTask;
  samples: Sample[];
  pool: FewshotPool;
}

/** Every sample turned into text once, so a malformed row fails now, naming task, file and row, not later per model. */
function checkDocs(task: EvalTask, samples: Sample[], file: string): void {
  samples.forEach((s, row) => {
    try {
      task.docs.text(s, row);
      if (task.type !== 'perplexity') task.docs.target(s, row);
      task.docs.choices?.(s, row);
    } catch (e) {
      if (!isMoeforgeError(e)) throw e;
      throw new MoeforgeError(e.code, `task ${task.name}: ${e.path && !e.path.startsWith('builtin') ? `${e.path}: ` : ''}${e.message}`, { path: file, cause: e });
    }
  });
}

/** Tasks resolved and their data loaded and checked (columns, emptiness, few-shot pool). */
export async function prepareTasks(suite: Suite, limit?: number): Promise<PreparedTask[]> {
  const label = path.basename(suite.file);
  const prepared: PreparedTask[] = [];
  for (const [i, spec] of suite.tasks.entries()) {
    const task = resolveTask(suite, spec, i, label);
    const all = await loadSamples(task.dataFile);
    checkColumns(all, task.docs.columns, task.name, task.dataFile);
    const cap = Math.min(limit ?? Infinity, task.limit ?? Infinity);
    const samples = all.slice(0, cap);
    checkDocs(task, samples, task.dataFile);
    let pool: FewshotPool = { samples: all, same: true };
    if (task.fewshotFile !== null && task.numFewshot > 0) {
      const shots = await loadSamples(task.fewshotFile);
      checkColumns(shots, task.docs.columns, task.name, task.fewshotFile);
      pool = { samples: shots, same: false };
    }
    prepared.push({ task, samples, pool });
  }
  return prepared;
}

/** A scorer over a loaded model and its folder's tokenizer (checked to fit the model's vocabulary). */
export async function causalLMScorer(folder: string, loadModel: () => Promise<CausalLM>, batchSize = 8): Promise<CausalLMScorer> {
  const tokenizer = await Tokenizer.fromFolder(folder);
  const model = await loadModel();
  if (tokenizer.vocabSize > model.config.vocabSize) {
    model.dispose();
    throw new MoeforgeError('incompatible_models', `the tokenizer has ${tokenizer.vocabSize} tokens, the model's vocab_size is ${model.config.vocabSize}`, { path: folder });
  }
  return new CausalLMScorer(model, tokenizer, batchSize);
}

/** A local model folder (config.json, safetensors, tokenizer files) as a scorer. */
export function localModel(ref: string, folder: string, options: { batchSize?: number; load?: LoadOptions; revision?: string | null; name?: string } = {}): EvalModel {
  return {
    name: options.name ?? path.basename(path.resolve(folder)),
    ref,
    revision: options.revision ?? null,
    load: () => causalLMScorer(folder, () => CausalLM.load(folder, options.load ?? {}), options.batchSize ?? 8),
  };
}

/** User errors are recorded per model; anything else is a bug and ends the run. */
function asUserError(e: unknown): MoeforgeError {
  if (isMoeforgeError(e)) return e;
  throw e;
}

export async function evaluate(suite: Suite, models: EvalModel[], options: EvalOptions = {}): Promise<EvalResults> {
  const seed = options.seed ?? suite.seed;
  const tasks = await prepareTasks(suite, options.limit);
  const results: TaskResultMap = {};
  const routing: Record<string, Record<string, RoutingStats>> = {};
  for (const t of tasks) results[t.task.name] = {};
  const records: ModelRecord[] = [];
  // Two models with one base name (two `model/` folders) get their refs as names.
  const names = models.map((m) => m.name);
  const unique = (m: EvalModel, i: number) => (names.indexOf(m.name) === i && names.lastIndexOf(m.name) === i ? m.name : m.ref);
  for (const [i, m] of models.entries()) {
    const name = unique(m, i);
    const record: ModelRecord = { name, ref: m.ref, revision: m.revision, status: 'ok', error: null, info: null };
    records.push(record);
    let scorer: Scorer;
    try {
      scorer = await m.load();
    } catch (e) {
      const err = asUserError(e);
      record.status = 'error';
      record.error = err.toLine();
      options.onModelError?.(name, err);
      continue;
    }
    record.info = scorer.info;
    record.revision = m.revision; // a Hub model knows its commit once fetched
    try {
      for (const t of tasks) {
        try {
          const run = await runTask({
            task: t.task,
            samples: t.samples,
            pool: t.pool,
            seed,
            scorer,
            onProgress: (done, total) => options.onProgress?.({ model: name, task: t.task.name, done, total }),
          });
          results[t.task.name]![name] = run;
          const r = scorer.takeRouting();
          if (r && r.tokens > 0) (routing[t.task.name] ??= {})[name] = r;
        } catch (e) {
          const err = asUserError(e);
          results[t.task.name]![name] = { error: err.toLine() };
          scorer.takeRouting();
          record.status = 'error';
          record.error ??= err.toLine();
          options.onModelError?.(name, err);
        }
      }
    } finally {
      scorer.dispose();
    }
  }
  return buildResults({
    suite,
    suiteLabel: options.suiteLabel ?? path.basename(suite.file),
    tasks: tasks.map((t) => t.task),
    seed,
    limit: options.limit ?? null,
    batchSize: options.batchSize ?? 8,
    models: records,
    results,
    routing,
  });
}
