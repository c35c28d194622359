// SVG charts, self-contained (no fonts or scripts fetched): a grouped bar chart of
// each task's accuracy (its first accuracy-type metric) per model with ±stderr
// whiskers, and for MoE models a routing heatmap per task: rows = sparse layers,
// columns = experts, shade = fraction of tokens whose top-k holds the expert.
import { ACCURACY_METRICS, escapeXml, modelsWithResults } from './format.js';
import type { EvalResults, RoutingRecord } from './results.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** The accuracy metric charted for each task (tasks with none, e.g. perplexity, are left out). */
export function chartedMetrics(r: EvalResults): { task: string; metric: string }[] {
  return r.suite.tasks.flatMap((t) => {
    const metric = (t.metrics as string[]).find((m) => ACCURACY_METRICS.has(m));
    return metric ? [{ task: t.name as string, metric }] : [];
  });
}

export function accuracyChart(r: EvalResults): string {
  const tasks = chartedMetrics(r);
  const models = modelsWithResults(r);
  const barW = 18;
  const gap = 28;
  const groupW = Math.max(1, models.length) * barW;
  const left = 50;
  const top = 30;
  const plotH = 200;
  const width = left + tasks.length * (groupW + gap) + gap + 160;
  const height = top + plotH + 70;
  const y = (v: number) => top + plotH - Math.max(0, Math.min(1, v)) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<title>${escapeXml(`${r.suite.name}: accuracy per task per model`)}</title>`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${left}" x2="${width - 160}" y1="${y(tick)}" y2="${y(tick)}" stroke="#dddddd"/>`);
    parts.push(`<text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end">${tick.toFixed(2)}</text>`);
  }
  tasks.forEach(({ task, metric }, ti) => {
    const x0 = left + gap + ti * (groupW + gap);
    models.forEach((model, mi) => {
      const entry = r.results[task]?.[model];
      if (!entry || 'error' in entry) return;
      const v = entry.metrics[metric];
      if (!v) return;
      const x = x0 + mi * barW;
      const label = `${model} on ${task}: ${metric} ${v.value.toFixed(4)}${v.stderr === null ? '' : ` ± ${v.stderr.toFixed(4)}`}`;
      parts.push(
        `<rect class="bar" data-task="${escapeXml(task)}" data-model="${escapeXml(model)}" data-metric="${metric}" data-value="${v.value}" x="${x}" y="${y(v.value)}" width="${barW - 2}" height="${y(0) - y(v.value)}" fill="${PALETTE[mi % PALETTE.length]}"><title>${escapeXml(label)}</title></rect>`,
      );
      if (v.stderr !== null && v.stderr > 0) {
        const cx = x + (barW - 2) / 2;
        parts.push(`<line class="stderr" x1="${cx}" x2="${cx}" y1="${y(v.value + v.stderr)}" y2="${y(v.value - v.stderr)}" stroke="#333333"/>`);
      }
    });
    parts.push(`<text x="${x0 + groupW / 2}" y="${top + plotH + 16}" text-anchor="middle">${escapeXml(task)}</text>`);
    parts.push(`<text x="${x0 + groupW / 2}" y="${top + plotH + 30}" text-anchor="middle" fill="#666666">${metric}</text>`);
  });
  models.forEach((model, mi) => {
    const ly = top + mi * 16;
    parts.push(`<rect x="${width - 150}" y="${ly}" width="10" height="10" fill="${PALETTE[mi % PALETTE.length]}"/>`);
    parts.push(`<text x="${width - 135}" y="${ly + 9}">${escapeXml(model)}</text>`);
  });
  parts.push(`<text x="${left}" y="${top - 12}" font-size="13">${escapeXml(`${r.suite.name}: accuracy per task`)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export function routingHeatmap(task: string, model: string, routing: RoutingRecord): string {
  const cellW = 44;
  const cellH = 24;
  const left = 70;
  const top = 50;
  const width = left + routing.num_experts * cellW + 20;
  const height = top + routing.layers.length * cellH + 30;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<title>${escapeXml(`${model} routing on ${task}`)}</title>`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="8" y="16" font-size="13">${escapeXml(`${model} on ${task}: top-${routing.experts_per_token} share per expert (${routing.tokens} tokens)`)}</text>`);
  for (let e = 0; e < routing.num_experts; e++) parts.push(`<text x="${left + e * cellW + cellW / 2}" y="${top - 8}" text-anchor="middle">expert ${e}</text>`);
  routing.layers.forEach((layer, li) => {
    const yy = top + li * cellH;
    parts.push(`<text x="${left - 6}" y="${yy + cellH / 2 + 4}" text-anchor="end">layer ${layer}</text>`);
    routing.fractions[li]!.forEach((f, e) => {
      // A token picks k experts: f / k is its share; full shade = every token.
      const share = Math.max(0, Math.min(1, f));
      const shade = Math.round(255 - share * 200);
      parts.push(
        `<rect class="cell" data-layer="${layer}" data-expert="${e}" data-fraction="${f}" x="${left + e * cellW}" y="${yy}" width="${cellW - 2}" height="${cellH - 2}" fill="rgb(${shade},${shade},255)"><title>${escapeXml(`layer ${layer}, expert ${e}: ${(f * 100).toFixed(1)}% of tokens`)}</title></rect>`,
      );
      parts.push(`<text x="${left + e * cellW + cellW / 2 - 1}" y="${yy + cellH / 2 + 3}" text-anchor="middle" font-size="10">${f.toFixed(2)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
