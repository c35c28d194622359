// SVG heatmap of a routes report: one panel per sparse layer, rows = prompt groups,
// columns = experts, each cell the fraction of the group's tokens whose top-1 expert
// it is (rows sum to 1), its value written in the cell; one colour scale (white →
// dark blue, 0 → 1) with a legend, so a glance shows which group goes where.
import { DECIMALS, type RoutesReport } from './routing-stats.js';

const CELL_W = 64;
const CELL_H = 28;
const PAD = 16;
const CHAR_W = 7.5;

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** 0 → #f7fbff, 1 → #08306b (linear in RGB, ColorBrewer "Blues" ends). */
export function heatColour(v: number): string {
  const x = Math.min(1, Math.max(0, v));
  const a = [0xf7, 0xfb, 0xff];
  const b = [0x08, 0x30, 0x6b];
  return `#${a.map((c, i) => Math.round(c + (b[i]! - c) * x).toString(16).padStart(2, '0')).join('')}`;
}

export function routesHeatmapSvg(r: RoutesReport): string {
  const E = r.numExperts;
  const labelW = Math.ceil(Math.max(...r.groups.map((g) => g.name.length), 5) * CHAR_W) + PAD;
  const panelW = labelW + E * CELL_W + PAD;
  const panelH = 2 * CELL_H + r.groups.length * CELL_H + PAD;
  const cols = Math.min(r.layers.length, 4);
  const rows = Math.ceil(r.layers.length / cols);
  const titleH = 40;
  const legendH = 56;
  const width = Math.max(cols * panelW + PAD, 360);
  const height = titleH + rows * panelH + legendH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${PAD}" y="24" font-size="15" font-weight="bold">${escapeXml(`Top-1 routing: fraction of each group's tokens per expert (${E} experts, top-${r.expertsPerToken})`)}</text>`,
  ];
  r.layers.forEach((layer, li) => {
    const ox = PAD + (li % cols) * panelW;
    const oy = titleH + Math.floor(li / cols) * panelH;
    const cond = layer.conditionNumber === null ? 'inf' : layer.conditionNumber.toFixed(2);
    out.push(`<g transform="translate(${ox},${oy})">`);
    out.push(`<text x="0" y="14" font-weight="bold">${escapeXml(`layer ${layer.layer} (gate cond. ${cond}${layer.degenerate ? ', degenerate' : ''})`)}</text>`);
    for (let e = 0; e < E; e++) {
      out.push(`<text x="${labelW + e * CELL_W + CELL_W / 2}" y="${CELL_H + 18}" text-anchor="middle">e${e}</text>`);
    }
    r.groups.forEach((g, gi) => {
      const y = 2 * CELL_H + gi * CELL_H;
      out.push(`<text x="${labelW - 8}" y="${y + CELL_H / 2 + 4}" text-anchor="end">${escapeXml(g.name)}</text>`);
      g.layers[li]!.top1.forEach((v, e) => {
        const x = labelW + e * CELL_W;
        out.push(`<rect x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="${heatColour(v)}" stroke="#ffffff"><title>${escapeXml(`${g.name} → e${e}: ${v.toFixed(DECIMALS)}`)}</title></rect>`);
        out.push(`<text x="${x + CELL_W / 2}" y="${y + CELL_H / 2 + 4}" text-anchor="middle" fill="${v > 0.5 ? '#ffffff' : '#000000'}">${v.toFixed(2)}</text>`);
      });
    });
    out.push('</g>');
  });
  // Legend: a gradient bar from 0 to 1.
  const ly = titleH + rows * panelH + 8;
  out.push('<defs><linearGradient id="scale" x1="0" x2="1" y1="0" y2="0">');
  for (const s of [0, 0.25, 0.5, 0.75, 1]) out.push(`<stop offset="${s}" stop-color="${heatColour(s)}"/>`);
  out.push('</linearGradient></defs>');
  out.push(`<rect x="${PAD}" y="${ly}" width="240" height="14" fill="url(#scale)" stroke="#888888"/>`);
  for (const s of [0, 0.5, 1]) out.push(`<text x="${PAD + s * 240}" y="${ly + 30}" text-anchor="middle">${s.toFixed(1)}</text>`);
  out.push(`<text x="${PAD + 256}" y="${ly + 12}">fraction of tokens (top-1)</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
