// The zoo comparison the issue asks for: per task, each expert's own accuracy
// next to the base's, every MoE's and the dense merges'; whether the best MoE
// keeps >= 90% of every expert's accuracy and beats the best dense merge on
// average; and, for each MoE, the share of tokens its gates send to the right
// expert (the routing part of any loss: the zoo's shared weights are lossless
// with `shared_weights: base`, see benchmarks/zoo/zoo.ts).
import type { EvalResults } from '../eval/results.js';

export interface ZooAnalysis {
  tasks: string[];
  /** task → model → exact match (null: no result). */
  accuracy: Record<string, Record<string, number | null>>;
  /** MoE → task → fraction of routed token slots given to the task's own expert, per MoE layer. */
  rightExpert: Record<string, Record<string, number[]>>;
  moes: string[];
  dense: string[];
  bestMoe: string | null;
  bestDense: string | null;
  average: Record<string, number | null>;
  /** bestMoe's accuracy / the expert's, per task. */
  retention: Record<string, number | null>;
  keeps90: boolean;
  beatsDense: boolean;
}

function exact(r: EvalResults, task: string, model: string): number | null {
  const e = r.results[task]?.[model];
  if (!e || 'error' in e) return null;
  return e.metrics.exact_match?.value ?? null;
}

function mean(xs: (number | null)[]): number | null {
  if (xs.some((x) => x === null)) return null;
  return (xs as number[]).reduce((a, b) => a + b, 0) / xs.length;
}

/** Experts are the models named after the tasks, in task order (= expert index in the MoEs). */
export function analyse(r: EvalResults, tasks: string[], moes: string[], dense: string[]): ZooAnalysis {
  const models = r.models.map((m) => m.name);
  const accuracy: ZooAnalysis['accuracy'] = {};
  for (const t of tasks) accuracy[t] = Object.fromEntries(models.map((m) => [m, exact(r, t, m)]));
  const average = Object.fromEntries(models.map((m) => [m, mean(tasks.map((t) => accuracy[t]![m] ?? null))]));
  const best = (names: string[]) => names.reduce<string | null>((b, m) => ((average[m] ?? -1) > (b === null ? -1 : (average[b] ?? -1)) ? m : b), null);
  const bestMoe = best(moes);
  const bestDense = best(dense);
  const retention = Object.fromEntries(
    tasks.map((t) => {
      const e = accuracy[t]![t] ?? null;
      const m = bestMoe ? (accuracy[t]![bestMoe] ?? null) : null;
      return [t, e === null || m === null || e === 0 ? null : m / e];
    }),
  );
  const rightExpert: ZooAnalysis['rightExpert'] = {};
  for (const m of moes) {
    rightExpert[m] = {};
    tasks.forEach((t, e) => {
      const routing = r.routing[t]?.[m];
      // fractions rows sum to k (top-k): divide by k for a share of routed slots
      if (routing) rightExpert[m]![t] = routing.fractions.map((row) => (row[e] ?? 0) / routing.experts_per_token);
    });
  }
  const keeps90 = tasks.every((t) => (retention[t] ?? 0) >= 0.9);
  const beatsDense = bestMoe !== null && (bestDense === null || (average[bestMoe] ?? -1) > (average[bestDense] ?? -1));
  return { tasks, accuracy, rightExpert, moes, dense, bestMoe, bestDense, average, retention, keeps90, beatsDense };
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

export function formatAnalysis(a: ZooAnalysis): string {
  const oracle = a.tasks.every((t) => `oracle-${t}` in a.accuracy[t]!);
  const cols = ['expert (own)', 'base', ...a.moes, ...a.dense, ...(oracle ? ['oracle routing'] : [])];
  const lines: string[] = ['## Zoo: does the MoE keep every expert\'s skill?', '', `| task | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`];
  for (const t of a.tasks) {
    const row = [a.accuracy[t]![t], a.accuracy[t]!.base, ...a.moes.map((m) => a.accuracy[t]![m]), ...a.dense.map((m) => a.accuracy[t]![m]), ...(oracle ? [a.accuracy[t]![`oracle-${t}`]] : [])];
    lines.push(`| ${t} | ${row.map(pct).join(' | ')} |`);
  }
  const expertAvg = mean(a.tasks.map((t) => a.accuracy[t]![t] ?? null));
  const oracleAvg = oracle ? [mean(a.tasks.map((t) => a.accuracy[t]![`oracle-${t}`] ?? null))] : [];
  lines.push(`| **average** | ${[expertAvg, a.average.base, ...a.moes.map((m) => a.average[m]), ...a.dense.map((m) => a.average[m]), ...oracleAvg].map((x) => pct(x ?? null)).join(' | ')} |`);
  lines.push('');
  if (a.bestMoe) {
    lines.push(
      `Best MoE: ${a.bestMoe} (average ${pct(a.average[a.bestMoe])}); keeps >= 90% of every expert's accuracy: ${a.keeps90 ? 'yes' : 'no'} ` +
        `(${a.tasks.map((t) => `${t} ${pct(a.retention[t])}`).join(', ')} of the expert's); ` +
        `beats the best dense merge${a.bestDense ? ` (${a.bestDense}, ${pct(a.average[a.bestDense])})` : ''} on average: ${a.beatsDense ? 'yes' : 'no'}.`,
    );
  }
  if (oracle) {
    lines.push(
      '',
      'oracle routing = a MoE holding only the task\'s expert (built like the others): the gap between it and the expert is what the MoE conversion and shared weights lose, the gap between it and a full MoE is what the gates lose.',
    );
  }
  lines.push('', 'Share of routed tokens sent to the task\'s own expert, per MoE layer (prompt + generated tokens):', '');
  for (const m of a.moes) {
    const per = a.tasks.map((t) => `${t} ${(a.rightExpert[m]?.[t] ?? []).map((x) => pct(x)).join('/') || '-'}`);
    lines.push(`- ${m}: ${per.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}
