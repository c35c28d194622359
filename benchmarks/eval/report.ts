// Writes an evaluation's outputs into a folder:
//   results.json                    per task, per model, metrics ± stderr, config, seed, versions
//   report.md                       the Markdown report (tables, errors, charts linked)
//   accuracy.svg                    accuracy per task per model
//   routing/<model>--<task>.svg     MoE routing heatmaps
//   samples/<task>/<model>.jsonl    per-sample records (outputs, log-likelihoods)
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fsError } from '../../core/errors.js';
import { accuracyChart, chartedMetrics, routingHeatmap } from './charts.js';
import { cell, metricRows, slug } from './format.js';
import { resultsJson, type EvalResults } from './results.js';

export function routingFile(model: string, task: string): string {
  return `routing/${slug(model)}--${slug(task)}.svg`;
}

export function renderMarkdown(r: EvalResults): string {
  const models = r.models.map((m) => m.name);
  const out: string[] = [];
  out.push(`# Evaluation: ${r.suite.name}`, '');
  if (r.suite.description) out.push(r.suite.description, '');
  out.push(`moeforge ${r.moeforge_version} · suite \`${r.suite.file}\` · seed ${r.seed} · limit ${r.limit ?? 'none'} · batch size ${r.batch_size}`, '');
  out.push('## Models', '', '| model | reference | revision | type | experts | status |', '|---|---|---|---|---|---|');
  for (const m of r.models) {
    const experts = m.num_experts === null ? '-' : `${m.num_experts} (top-${m.experts_per_token})`;
    out.push(`| ${m.name} | \`${m.ref}\` | ${m.revision ?? '-'} | ${m.model_type ?? '-'} | ${experts} | ${m.status === 'ok' ? 'ok' : 'failed'} |`);
  }
  out.push('', '## Results', '', 'Each value is the mean over the task\'s samples ± its standard error (lm-evaluation-harness\'s formulas; perplexities: bootstrap).', '');
  out.push(`| task | metric | ${models.join(' | ')} |`, `|---|---|${models.map(() => '---:|').join('')}`);
  for (const { task, metric } of metricRows(r)) out.push(`| ${task} | ${metric} | ${models.map((m) => cell(r, task, metric, m)).join(' | ')} |`);
  const errors = r.models.filter((m) => m.error !== null);
  const taskErrors = Object.entries(r.results).flatMap(([task, byModel]) =>
    Object.entries(byModel).flatMap(([model, e]) => ('error' in e ? [`- ${model} on ${task}: \`${e.error}\``] : [])),
  );
  if (errors.length > 0 || taskErrors.length > 0) {
    out.push('', '## Errors', '');
    for (const m of errors) if (!taskErrors.some((l) => l.startsWith(`- ${m.name} on`))) out.push(`- ${m.name}: \`${m.error}\``);
    out.push(...taskErrors);
  }
  if (chartedMetrics(r).length > 0) out.push('', '## Accuracy', '', '![accuracy per task per model](accuracy.svg)');
  const routed = Object.entries(r.routing);
  if (routed.length > 0) {
    out.push('', '## Routing', '', 'Fraction of tokens whose top-k experts include each expert, per sparse layer (each row sums to k).', '');
    for (const [task, byModel] of routed) {
      for (const model of Object.keys(byModel)) out.push(`### ${model} on ${task}`, '', `![${model} routing on ${task}](${routingFile(model, task)})`, '');
    }
  }
  return out.join('\n').trimEnd() + '\n';
}

async function put(file: string, text: string): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  } catch (e) {
    throw fsError(e, file, 'write the report');
  }
}

/** Writes every output; returns the files written, relative to `outDir`. */
export async function writeReport(r: EvalResults, outDir: string): Promise<string[]> {
  const files: [string, string][] = [
    ['results.json', resultsJson(r)],
    ['report.md', renderMarkdown(r)],
  ];
  if (chartedMetrics(r).length > 0) files.push(['accuracy.svg', accuracyChart(r)]);
  for (const [task, byModel] of Object.entries(r.routing)) {
    for (const [model, routing] of Object.entries(byModel)) files.push([routingFile(model, task), routingHeatmap(task, model, routing)]);
  }
  for (const [task, byModel] of Object.entries(r.samples ?? {})) {
    for (const [model, rows] of Object.entries(byModel)) {
      files.push([`samples/${slug(task)}/${slug(model)}.jsonl`, rows.map((x) => JSON.stringify(x)).join('\n') + '\n']);
    }
  }
  for (const [name, text] of files) await put(path.join(outDir, name), text);
  return files.map(([name]) => name);
}
