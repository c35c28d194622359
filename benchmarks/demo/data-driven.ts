// The zoo report's rows for the data-driven merges (issue 10): from the committed zoo,
// writes per-expert calibration files drawn from the TRAINING distribution, makes the dense
// merges TIES, Sens (base_method ties), task arithmetic, DivMerge and LED with
// `moeforge merge`, builds the demo's moe-base (hidden gates) with plain and with
// enhanced experts with `moeforge build`, evaluates everything on the zoo suite and
// prints each data-driven method next to its data-free counterpart.
// Usage: npx tsx benchmarks/demo/data-driven.ts [outDir] [--limit N]
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMoeforgeError } from '../../core/errors.js';
import { runBuild } from '../../cli/commands/build.js';
import { runMerge } from '../../cli/commands/merge.js';
import { demoWorkspace, evaluateAndReport, parseReportArgs, zooModel } from './evaluate-zoo.js';
import type { EvalResults } from '../eval/results.js';
import { loadSuite } from '../eval/suite.js';
import { renderTable } from '../eval/table.js';
import { TASK_NAMES, type TaskName } from '../zoo/tasks.js';
import { CALIBRATION, denseMerges, drawCalibration, moeRecipes, type CalibrationFiles } from './data-driven-recipes.js';
import { positivePrompts } from './recipes.js';

const ZOO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'zoo', 'models');
/** Calibration lines written per expert (each method reads CALIBRATION.samples of them). */
const CALIBRATION_LINES = 256;

/** Exact match of one model on one task (null when it has none). */
function score(r: EvalResults, task: string, model: string): number | null {
  const e = r.results[task]?.[model];
  if (!e || 'error' in e) return null;
  return e.metrics.exact_match?.value ?? null;
}

/** Method vs its data-free counterpart: per task both scores and the difference, then the mean. */
export function pairTable(r: EvalResults, pairs: [string, string][]): string {
  const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(2));
  const diff = (a: number | null, b: number | null) => {
    if (a === null || b === null) return '-';
    const d = (a - b).toFixed(2);
    // a difference that rounds to zero prints +0.00, not -0.00
    return Number(d) === 0 ? '+0.00' : `${a > b ? '+' : ''}${d}`;
  };
  const header = ['method', 'vs', ...TASK_NAMES.flatMap((t) => [t, '', 'Δ']), 'mean', '', 'Δ'];
  const rows = pairs.map(([m, c]) => {
    const cells = [m, c];
    const ms: (number | null)[] = [];
    const cs: (number | null)[] = [];
    for (const t of TASK_NAMES) {
      const a = score(r, t, m);
      const b = score(r, t, c);
      ms.push(a);
      cs.push(b);
      cells.push(fmt(a), fmt(b), diff(a, b));
    }
    const mean = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : xs.reduce<number>((s, x) => s + x!, 0) / xs.length);
    cells.push(fmt(mean(ms)), fmt(mean(cs)), diff(mean(ms), mean(cs)));
    return cells;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [
    'exact match, method | counterpart | Δ per task',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
  ].join('\n');
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { out, limit } = parseReportArgs(process.argv.slice(2), path.join('demo-output', 'data-driven'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const seconds = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const { zoo, seed, testSize, recipes, models } = await demoWorkspace(ZOO_DIR, out, ['calibration']);
  const dataDir = path.join(out, 'calibration');

  say(`moeforge data-driven demo: zoo ${ZOO_DIR}`);
  const cal = {} as Record<TaskName, CalibrationFiles>;
  for (const t of TASK_NAMES) {
    const draw = drawCalibration(t, seed, testSize, ZOO_DIR, CALIBRATION_LINES);
    if (t !== 'facts' && draw.inTestSet > 0) throw new Error(`${t}: ${draw.inTestSet} calibration questions are in the held-out test set`);
    cal[t] = { text: path.join(dataDir, `${t}.jsonl`), prompts: path.join(dataDir, `${t}.prompts.jsonl`) };
    await writeFile(cal[t].text, `${draw.text.join('\n')}\n`);
    await writeFile(cal[t].prompts, `${draw.prompts.join('\n')}\n`);
    say(
      `  calibration ${t}: ${CALIBRATION_LINES} training samples, ${draw.inTestSet} in the test set${t === 'facts' ? ' (facts: the test set is the memorised table itself)' : ''}; methods read ${CALIBRATION.samples} × ≤${CALIBRATION.seqLen} tokens`,
    );
  }

  const merges = denseMerges(zoo, cal);
  for (const m of merges) {
    const file = path.join(recipes, `${m.name}.yml`);
    await writeFile(file, m.config);
    await runMerge(file, { out: path.join(models, m.name), overwrite: true });
    say(`  merged ${m.name} [${seconds()}]`);
  }
  const moe = moeRecipes(zoo, positivePrompts(seed, testSize), cal);
  for (const [name, text] of [
    ['moe-plain', moe.plain],
    ['moe-enhanced', moe.enhanced],
  ] as const) {
    const file = path.join(recipes, `${name}.yml`);
    await writeFile(file, text);
    await runBuild(file, { out: path.join(models, name), overwrite: true, quiet: true });
    say(`  built ${name} (gate_mode hidden, shared_weights base) [${seconds()}]`);
  }

  const suite = await loadSuite(path.join(ZOO_DIR, 'zoo-suite.yml'));
  const names = [...merges.map((m) => m.name), 'moe-plain', 'moe-enhanced'];
  const evalModels = [
    zooModel('base', zoo.base),
    ...TASK_NAMES.map((n) => zooModel(n, zoo[n])),
    ...names.map((n) => zooModel(n, path.join(models, n))),
  ];
  const { results, reportDir } = await evaluateAndReport(suite, evalModels, { limit, out, say, elapsed: seconds });
  const pairs: [string, string][] = [
    ...merges.filter((m) => m.counterpart !== null).map((m) => [m.name, m.counterpart!] as [string, string]),
    ['divmerge', merges.find((m) => m.name.startsWith('task-arithmetic-w'))!.name],
    ['moe-enhanced', 'moe-plain'],
  ];
  const table = pairTable(results, pairs);
  await writeFile(path.join(reportDir, 'data-driven.md'), `# Data-driven merges vs their data-free counterparts (zoo, limit ${limit})\n\n\`\`\`\n${table}\n\`\`\`\n`);
  say('');
  say(renderTable(results));
  say(table);
  say('');
  say(`report: ${path.relative(process.cwd(), path.join(reportDir, 'report.md'))} (data-driven.md beside it) — ${seconds()} in all`);
}

main().catch((e: unknown) => {
  process.stderr.write(isMoeforgeError(e) ? `${e.toLine()}\n` : `${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = isMoeforgeError(e) ? 2 : 1;
});
