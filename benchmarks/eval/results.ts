// results.json: per task, per model, every metric with its stderr, plus what is
// needed to reproduce the run: the suite's resolved task configs, the seed, the
// limit and batch size, the tool version and each model's ref and revision. No
// timestamps and no absolute paths, so two runs of one command give the same bytes.
import { VERSION } from '../../core/version.js';
import type { MetricValue, TaskRun } from './runners.js';
import type { RoutingStats, ScorerInfo } from './scorer.js';
import type { Suite } from './suite.js';
import { taskConfig, type EvalTask } from './task.js';

export interface ModelRecord {
  name: string;
  ref: string;
  revision: string | null;
  status: 'ok' | 'error';
  /** The one line a user sees (`error[code]: path: message`). */
  error: string | null;
  info: ScorerInfo | null;
}

export type TaskResultMap = Record<string, Record<string, TaskRun | { error: string }>>;

export interface RoutingRecord {
  layers: number[];
  num_experts: number;
  experts_per_token: number;
  tokens: number;
  /** [layer][expert]: fraction of tokens whose top-k includes the expert (each row sums to k). */
  fractions: number[][];
}

export interface EvalResults {
  moeforge_version: string;
  suite: { name: string; file: string; description: string | null; tasks: Record<string, unknown>[] };
  seed: number;
  limit: number | null;
  batch_size: number;
  models: {
    name: string;
    ref: string;
    revision: string | null;
    status: 'ok' | 'error';
    error: string | null;
    model_type: string | null;
    architecture: string | null;
    num_experts: number | null;
    experts_per_token: number | null;
  }[];
  /** task → model → metrics (or the error that stopped the model on this task). */
  results: Record<string, Record<string, { n: number; metrics: Record<string, MetricValue> } | { error: string }>>;
  /** task → MoE model → routing fractions. */
  routing: Record<string, Record<string, RoutingRecord>>;
  /** Not written to results.json: per-sample records (written to samples/). */
  samples?: Record<string, Record<string, Record<string, unknown>[]>>;
  /** Not written: the primary metric of each task (the first of its metrics). */
  primary?: Record<string, string>;
}

/** Rounds to 10 significant digits: stable across platforms' last-bit differences in printing. */
function round(x: number | null): number | null {
  return x === null || !Number.isFinite(x) ? x : Number(x.toPrecision(10));
}

export function buildResults(o: {
  suite: Suite;
  suiteLabel: string;
  tasks: EvalTask[];
  seed: number;
  limit: number | null;
  batchSize: number;
  models: ModelRecord[];
  results: TaskResultMap;
  routing: Record<string, Record<string, RoutingStats>>;
}): EvalResults {
  const results: EvalResults['results'] = {};
  const samples: NonNullable<EvalResults['samples']> = {};
  for (const t of o.tasks) {
    results[t.name] = {};
    samples[t.name] = {};
    for (const m of o.models) {
      const r = o.results[t.name]?.[m.name];
      if (!r) continue;
      if ('error' in r) {
        results[t.name]![m.name] = { error: r.error };
        continue;
      }
      const metrics: Record<string, MetricValue> = {};
      for (const name of t.metrics) {
        const v = r.metrics[name];
        if (v) metrics[name] = { value: round(v.value)!, stderr: round(v.stderr) };
      }
      results[t.name]![m.name] = { n: r.n, metrics };
      samples[t.name]![m.name] = r.samples;
    }
  }
  const routing: EvalResults['routing'] = {};
  for (const [task, byModel] of Object.entries(o.routing)) {
    routing[task] = {};
    for (const [model, r] of Object.entries(byModel)) {
      routing[task]![model] = {
        layers: r.layers,
        num_experts: r.numExperts,
        experts_per_token: r.expertsPerToken,
        tokens: r.tokens,
        fractions: r.counts.map((row) => row.map((c) => round(c / r.tokens)!)),
      };
    }
  }
  return {
    moeforge_version: VERSION,
    suite: { name: o.suite.name, file: o.suiteLabel, description: o.suite.description ?? null, tasks: o.tasks.map(taskConfig) },
    seed: o.seed,
    limit: o.limit,
    batch_size: o.batchSize,
    models: o.models.map((m) => ({
      name: m.name,
      ref: m.ref,
      revision: m.revision,
      status: m.status,
      error: m.error,
      model_type: m.info?.modelType ?? null,
      architecture: m.info?.architecture ?? null,
      num_experts: m.info?.numExperts ?? null,
      experts_per_token: m.info?.expertsPerToken ?? null,
    })),
    results,
    routing,
    samples,
    primary: Object.fromEntries(o.tasks.map((t) => [t.name, t.metrics[0]!])),
  };
}

/** The JSON text of results.json (without the in-memory extras). */
export function resultsJson(r: EvalResults): string {
  const { samples: _samples, primary: _primary, ...rest } = r;
  return `${JSON.stringify(rest, null, 2)}\n`;
}
