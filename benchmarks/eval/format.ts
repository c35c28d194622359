// Shared formatting for the table, the Markdown report and the charts.
import type { EvalResults } from './results.js';

export const ACCURACY_METRICS = new Set(['acc', 'acc_norm', 'exact_match']);

export function formatValue(value: number, stderr: number | null): string {
  const digits = Math.abs(value) >= 100 ? 2 : 4;
  return stderr === null ? value.toFixed(digits) : `${value.toFixed(digits)} ± ${stderr.toFixed(digits)}`;
}

/** Models that produced at least one task result, in command-line order. */
export function modelsWithResults(r: EvalResults): string[] {
  return r.models.filter((m) => Object.values(r.results).some((t) => t[m.name] && !('error' in t[m.name]!))).map((m) => m.name);
}

/** Rows of (task, metric) in suite order. */
export function metricRows(r: EvalResults): { task: string; metric: string }[] {
  return r.suite.tasks.flatMap((t) => (t.metrics as string[]).map((metric) => ({ task: t.name as string, metric })));
}

export function cell(r: EvalResults, task: string, metric: string, model: string): string {
  const entry = r.results[task]?.[model];
  if (!entry) return r.models.find((m) => m.name === model)?.status === 'error' ? 'failed' : '-';
  if ('error' in entry) return 'error';
  const v = entry.metrics[metric];
  return v ? formatValue(v.value, v.stderr) : '-';
}

/** A file-name-safe form of a model or task name. */
export function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'model';
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}
