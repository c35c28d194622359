// The terminal table: one row per task and metric, one column per model (as
// lm-evaluation-harness's make_table, models side by side).
import { cell, metricRows } from './format.js';
import type { EvalResults } from './results.js';

export function renderTable(r: EvalResults): string {
  const models = r.models.map((m) => m.name);
  const header = ['task', 'metric', 'n', ...models];
  const rows = metricRows(r).map(({ task, metric }) => {
    const n = Object.values(r.results[task] ?? {}).find((e) => !('error' in e));
    return [task, metric, n && !('error' in n) ? String(n.n) : '-', ...models.map((m) => cell(r, task, metric, m))];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}
