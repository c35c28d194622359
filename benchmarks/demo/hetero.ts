// The heterogeneous demo (issue 9, Must show): from the committed zoo
// (benchmarks/zoo/models: four llama experts, hidden 64) plus the zoo's qwen2
// expert of another width (benchmarks/zoo/models-hetero/caesar-qwen2, hidden 96,
// trained by benchmarks/zoo/hetero-expert.ts), builds through `moeforge build`
// heterogeneous MoEs of all five experts (sequence routing, MergeME arXiv
// 2502.00997), experts_per_token 1: three keep every expert whole (perplexity
// routing: gate_mode random; prompt centroids: gate_mode hidden; a learned router:
// gate_mode learned) and one is MergeME's trained form (gate_mode learned, gate.form
// projected: shared embedding and head, trained projections). Evaluates
// them next to every expert, the base, the homogeneous MoE of the four llama
// experts (the demo's moe-base: hidden gates, shared base) and a dense TIES merge
// of the four, prints the table, the per-task share of each expert's own accuracy
// that the heterogeneous MoEs keep (target >= 95%), and where each task's
// questions were routed (the routing part of any loss), and writes the report.
// Usage: npx tsx benchmarks/demo/hetero.ts [outDir] [--limit N]   (default demo-output/hetero, 100)
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { isMoeforgeError } from '../../core/errors.js';
import { loadHeteroScorer } from '../../core/hetero/scorer.js';
import type { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { runBuild } from '../../cli/commands/build.js';
import { runMerge } from '../../cli/commands/merge.js';
import type { EvalModel } from '../eval/evaluate.js';
import { demoWorkspace, evaluateAndReport, parseReportArgs, zooModel } from './evaluate-zoo.js';
import type { EvalResults } from '../eval/results.js';
import { loadSuite } from '../eval/suite.js';
import { renderTable } from '../eval/table.js';
import { HETERO_DIR, HETERO_EXPERT_NAME, HETERO_TASK } from '../zoo/hetero-expert.js';
import { Rng } from '../../core/rng.js';
import { TASK_NAMES, testSet, trainSampler, zooTasks, type TaskName } from '../zoo/tasks.js';
import { MOE_VARIANTS, moeRecipe, positivePrompts, tiesMergeConfig } from './recipes.js';

const ZOO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'zoo', 'models');
const QWEN = path.join(HETERO_DIR, HETERO_EXPERT_NAME);
/** The target: each expert's in-domain accuracy kept by the training-free heterogeneous MoE. */
const TARGET = 0.95;
/** Question + answer samples per task for the projected form's training. */
const TRAIN_TEXTS = 96;

/** The five experts in MoE order: the four llama experts, then the qwen2 one. */
function heteroExperts(zoo: Record<'base' | TaskName, string>): { name: string; folder: string; task: TaskName }[] {
  return [...TASK_NAMES.map((n) => ({ name: n, folder: zoo[n], task: n })), { name: HETERO_EXPERT_NAME, folder: QWEN, task: HETERO_TASK }];
}

interface HeteroVariant {
  name: string;
  gateMode: 'random' | 'hidden' | 'learned';
  /** The recipe's `gate:` block (gate_mode learned). */
  gate?: Record<string, unknown>;
  /** How the variant routes, for the report. */
  text: string;
}

const HETERO_VARIANTS: readonly HeteroVariant[] = [
  { name: 'hetero-ppl', gateMode: 'random', text: 'training-free, perplexity routing' },
  { name: 'hetero-centroid', gateMode: 'hidden', text: 'training-free, prompt centroids' },
  { name: 'hetero-learned', gateMode: 'learned', text: "experts whole, a router trained on the experts' prompts" },
  { name: 'hetero-projected', gateMode: 'learned', gate: { form: 'projected' }, text: "MergeME's trained form, moeforge's defaults: least-squares projections, distilled from each expert" },
  {
    name: 'hetero-projected-mergeme',
    gateMode: 'learned',
    gate: { form: 'projected', proj_init: 'identity', proj_objective: 'lm' },
    text: "MergeME's trained form as the paper sets it up: [I | 0] projections trained on the next-token loss",
  },
];

/** Whole question + answer samples of a task (never a held-out question): what the projections train on. */
function trainingTexts(zooSeed: number, testSize: number, task: TaskName, count: number): string[] {
  const tasks = zooTasks(zooSeed);
  const sample = trainSampler(tasks[task], testSet(tasks[task], zooSeed, testSize), new Rng(zooSeed).derive(`demo/hetero-train/${task}`));
  return Array.from({ length: count }, () => {
    const s = sample();
    return s.question + s.answer;
  });
}

/** gate_mode random → perplexity routing; hidden → prompt centroids; learned → a learned router or the projected form (core/build/hetero.ts). */
function heteroRecipe(v: HeteroVariant, zoo: Record<'base' | TaskName, string>, prompts: Record<TaskName, string[]>, trainData: Record<TaskName, string>): string {
  const recipe = {
    base_model: zoo.base,
    gate_mode: v.gateMode,
    dtype: 'float32',
    experts_per_token: 1,
    ...(v.gate ? { gate: v.gate } : {}),
    experts: heteroExperts(zoo).map((e) => ({ source_model: e.folder, positive_prompts: prompts[e.task], ...(v.gate?.['form'] === 'projected' ? { train_data: trainData[e.task] } : {}) })),
  };
  return `# moeforge hetero demo: ${v.text}\n${stringify(recipe)}`;
}

function exact(r: EvalResults, task: string, model: string): number | null {
  const e = r.results[task]?.[model];
  if (!e || 'error' in e) return null;
  return e.metrics.exact_match?.value ?? null;
}

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);

/** Per task: each in-domain expert's accuracy and the share of it each heterogeneous MoE keeps. */
function retentionTable(r: EvalResults, heteros: string[], zoo: Record<'base' | TaskName, string>): { text: string; met: Record<string, boolean> } {
  const lines = ['| task | expert | expert acc | ' + heteros.map((h) => `${h} acc | kept`).join(' | ') + ' |', '|---|---|---|' + heteros.map(() => '---|---|').join('')];
  const met = Object.fromEntries(heteros.map((h) => [h, true]));
  for (const e of heteroExperts(zoo)) {
    const own = exact(r, e.task, e.name);
    const cells = heteros.map((h) => {
      const m = exact(r, e.task, h);
      const kept = own === null || m === null || own === 0 ? null : m / own;
      if (kept === null || kept < TARGET) met[h] = false;
      return `${pct(m)} | ${pct(kept)}${kept !== null && kept >= TARGET ? ' ✓' : ' ✗'}`;
    });
    lines.push(`| ${e.task} | ${e.name} | ${pct(own)} | ${cells.join(' | ')} |`);
  }
  return { text: lines.join('\n'), met };
}

/** Where the router sends each task's held-out questions (prompt = the question, as the suite asks it). */
async function routingTable(folder: string, limit: number): Promise<string> {
  const scorer = await loadHeteroScorer(folder);
  try {
    const names = heteroExperts(Object.fromEntries(['base', ...TASK_NAMES].map((n) => [n, n])) as Record<'base' | TaskName, string>).map((e) => e.name);
    const lines = [`| task | ${names.join(' | ')} |`, `|---|${names.map(() => '---|').join('')}`];
    for (const t of TASK_NAMES) {
      const rows = readFileSync(path.join(ZOO_DIR, 'data', `${t}.test.jsonl`), 'utf8').trim().split('\n').slice(0, limit);
      const hits = names.map(() => 0);
      for (const row of rows) {
        const { question } = JSON.parse(row) as { question: string };
        const ids = (scorer.tokenizer as Tokenizer).encode(question, { addSpecialTokens: true });
        const s = await scorer.model.scores(ids);
        hits[s.indexOf(Math.max(...s))]!++;
      }
      lines.push(`| ${t} | ${hits.map((h) => pct(h / rows.length)).join(' | ')} |`);
    }
    return lines.join('\n');
  } finally {
    scorer.dispose();
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { out, limit } = parseReportArgs(process.argv.slice(2), path.join('demo-output', 'hetero'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const seconds = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const { zoo, seed, testSize, recipes, models } = await demoWorkspace(ZOO_DIR, out);
  const prompts = positivePrompts(seed, testSize);

  say(`moeforge hetero demo: zoo ${ZOO_DIR} + ${QWEN}`);
  const trainData = {} as Record<TaskName, string>;
  for (const t of TASK_NAMES) {
    trainData[t] = path.join(recipes, `${t}.train.txt`);
    await writeFile(trainData[t], `${trainingTexts(seed, testSize, t, TRAIN_TEXTS).join('\n')}\n`);
  }
  const heteros = HETERO_VARIANTS;
  for (const h of heteros) {
    const file = path.join(recipes, `${h.name}.yml`);
    await writeFile(file, heteroRecipe(h, zoo, prompts, trainData));
    await runBuild(file, { out: path.join(models, h.name), overwrite: true, quiet: true });
    say(`  built ${h.name} (5 experts: 4 llama d64 + qwen2 d96; ${h.text}, experts_per_token 1) [${seconds()}]`);
  }
  const homo = MOE_VARIANTS.find((v) => v.name === 'moe-base')!;
  const homoFile = path.join(recipes, `${homo.name}.yml`);
  await writeFile(homoFile, moeRecipe(homo, zoo, prompts, 1));
  await runBuild(homoFile, { out: path.join(models, homo.name), overwrite: true, quiet: true });
  say(`  built ${homo.name} (homogeneous Mixtral of the 4 llama experts, hidden gates, shared base) [${seconds()}]`);
  const mergeFile = path.join(recipes, 'ties-merge.yml');
  await writeFile(mergeFile, tiesMergeConfig(zoo));
  await runMerge(mergeFile, { out: path.join(models, 'ties-merge'), overwrite: true, quiet: true });
  say(`  merged ties-merge (dense TIES of the 4 llama experts) [${seconds()}]`);

  const suite = await loadSuite(path.join(ZOO_DIR, 'zoo-suite.yml'));
  const heteroModel = (name: string): EvalModel => {
    const folder = path.join(models, name);
    return { name, ref: folder, revision: null, load: () => loadHeteroScorer(folder) };
  };
  const evalModels = [
    zooModel('base', zoo.base),
    ...TASK_NAMES.map((n) => zooModel(n, zoo[n])),
    zooModel(HETERO_EXPERT_NAME, QWEN),
    ...heteros.map((h) => heteroModel(h.name)),
    zooModel(homo.name, path.join(models, homo.name)),
    zooModel('ties-merge', path.join(models, 'ties-merge')),
  ];
  const { results, reportDir } = await evaluateAndReport(suite, evalModels, { limit, out, say, elapsed: seconds });
  const retention = retentionTable(results, heteros.map((h) => h.name), zoo);
  const routing = await Promise.all(heteros.map(async (h) => `### ${h.name}: where each task's questions are routed (first ${limit})\n\n${await routingTable(path.join(models, h.name), limit)}`));
  const analysis = [
    '## Heterogeneous MoE: share of each expert\'s own accuracy kept (target ≥ 95%)',
    '',
    retention.text,
    '',
    ...heteros.map((h) => `${h.name} (${h.text}) keeps ≥ 95% of every expert's in-domain accuracy: ${retention.met[h.name] ? 'yes' : 'no'}.`),
    '',
    ...routing.flatMap((r) => [r, '']),
  ].join('\n');
  await writeFile(path.join(reportDir, 'hetero-analysis.md'), `${analysis}\n`);
  say('');
  say(renderTable(results));
  say(analysis);
  say(`report: ${path.relative(process.cwd(), path.join(reportDir, 'report.md'))} (hetero-analysis.md beside it) — ${seconds()} in all`);
}

main().catch((e: unknown) => {
  process.stderr.write(isMoeforgeError(e) ? `${e.toLine()}\n` : `${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = isMoeforgeError(e) ? 2 : 1;
});
