// The terminal table of `moeforge routes`: one block per sparse layer, one row per
// prompt group. Numbers are printed with DECIMALS places from the already-rounded
// report, so they are exactly the numbers of the JSON file.
import { DECIMALS, type RoutesReport } from './routing-stats.js';

const fmt = (v: number) => v.toFixed(DECIMALS);

function layerList(layers: number[]): string {
  if (layers.length === 1) return `layer ${layers[0]} has`;
  return `layers ${layers.slice(0, -1).join(', ')} and ${layers[layers.length - 1]} have`;
}

export function formatRoutesTable(r: RoutesReport): string {
  const E = r.numExperts;
  const experts = Array.from({ length: E }, (_, e) => `e${e}`);
  const groupWidth = Math.max(5, ...r.groups.map((g) => g.name.length));
  const col = DECIMALS + 3;
  const cells = (vs: (number | string)[]) => vs.map((v) => (typeof v === 'number' ? fmt(v) : v).padStart(col)).join('');
  const lines: string[] = [`${r.model}: ${E} experts, top-${r.expertsPerToken} routing; fractions of each group's tokens per expert, entropy in nats`];
  r.layers.forEach((layer, li) => {
    const cond = layer.conditionNumber === null ? 'inf' : fmt(layer.conditionNumber);
    const unused = layer.unusedExperts.length ? layer.unusedExperts.map((e) => `e${e}`).join(', ') : 'none';
    lines.push('');
    lines.push(`layer ${layer.layer}  gate condition number ${cond}${layer.degenerate ? ' (degenerate)' : ''}  unused experts: ${unused}`);
    lines.push(`${'group'.padEnd(groupWidth)} ${'tokens'.padStart(6)} | top-1${cells(experts)} | top-${r.expertsPerToken}${cells(experts)} | ${'entropy'.padStart(col)}`);
    for (const g of r.groups) {
      const s = g.layers[li]!;
      lines.push(`${g.name.padEnd(groupWidth)} ${String(g.tokens).padStart(6)} |      ${cells(s.top1)} |      ${cells(s.topk)} | ${fmt(s.entropy).padStart(col)}`);
    }
  });
  const degenerate = r.layers.filter((l) => l.degenerate).map((l) => l.layer);
  if (degenerate.length) {
    lines.push('');
    // mergekit's warn_degenerate_gates wording, with the threshold named.
    lines.push(`warning: ${layerList(degenerate)} degenerate routing parameters (gate condition number > 5): the prompts may be too similar, and some experts will be underused`);
  }
  return `${lines.join('\n')}\n`;
}
