// `npm run demo`: the quick start. From the committed expert zoo
// (benchmarks/zoo/models), builds MoEs with hidden gates and shared weights
// base / average / ties (Mixtral output), two gate comparisons (router_input and
// learned gates), one-expert "oracle routing" MoEs, and a dense TIES merge of the
// experts; evaluates everything next to the base and the experts on the zoo
// suite with the evaluation harness (benchmarks/eval), prints the table and the
// per-task comparison, and writes the report under ./demo-output.
// Offline, a few minutes on 2 cores.
// Usage: demo [outDir] [--limit N] [--experts-per-token K] [--zoo folder]
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMoeforgeError } from '../../core/errors.js';
import { runBuild } from '../../cli/commands/build.js';
import { runMerge } from '../../cli/commands/merge.js';
import { demoWorkspace, evaluateAndReport, zooModel } from './evaluate-zoo.js';
import { loadSuite } from '../eval/suite.js';
import { renderTable } from '../eval/table.js';
import { TASK_NAMES } from '../zoo/tasks.js';
import { analyse, formatAnalysis } from './analysis.js';
import { MOE_VARIANTS, moeRecipe, oracleRecipe, positivePrompts, tiesMergeConfig } from './recipes.js';

const COMMITTED_ZOO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'zoo', 'models');

function parseArgs(argv: string[]): { out: string; limit: number; expertsPerToken: number; zoo: string } {
  let out = 'demo-output';
  let zoo = COMMITTED_ZOO;
  let limit = 100;
  let expertsPerToken = 1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--limit') limit = Number(argv[++i]);
    else if (a === '--experts-per-token') expertsPerToken = Number(argv[++i]);
    else if (a === '--zoo') zoo = path.resolve(argv[++i] ?? '');
    else out = a;
  }
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit expects a positive whole number');
  return { out: path.resolve(out), limit, expertsPerToken, zoo };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { out, limit, expertsPerToken, zoo: ZOO_DIR } = parseArgs(process.argv.slice(2));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const seconds = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const { zoo, seed, testSize, recipes, models } = await demoWorkspace(ZOO_DIR, out);

  say(`moeforge demo: zoo ${ZOO_DIR}`);
  const prompts = positivePrompts(seed, testSize);
  for (const v of MOE_VARIANTS) {
    const file = path.join(recipes, `${v.name}.yml`);
    await writeFile(file, moeRecipe(v, zoo, prompts, expertsPerToken));
    await runBuild(file, { out: path.join(models, v.name), overwrite: true, quiet: true });
    say(`  built ${v.name} (gate_mode ${v.gateMode}, shared_weights ${typeof v.sharedWeights === 'string' ? v.sharedWeights : v.sharedWeights.method}) [${seconds()}]`);
  }
  for (const n of TASK_NAMES) {
    const file = path.join(recipes, `oracle-${n}.yml`);
    await writeFile(file, oracleRecipe(n, zoo, prompts));
    await runBuild(file, { out: path.join(models, `oracle-${n}`), overwrite: true, quiet: true });
  }
  say(`  built oracle-<task> (one-expert MoEs: routing cannot be wrong) [${seconds()}]`);
  const mergeFile = path.join(recipes, 'ties-merge.yml');
  await writeFile(mergeFile, tiesMergeConfig(zoo));
  await runMerge(mergeFile, { out: path.join(models, 'ties-merge'), overwrite: true, quiet: true });
  say(`  merged ties-merge (dense TIES of the four experts) [${seconds()}]`);

  const suite = await loadSuite(path.join(ZOO_DIR, 'zoo-suite.yml'));
  const evalModels = [
    zooModel('base', zoo.base),
    ...TASK_NAMES.map((n) => zooModel(n, zoo[n])),
    ...MOE_VARIANTS.map((v) => zooModel(v.name, path.join(models, v.name))),
    zooModel('ties-merge', path.join(models, 'ties-merge')),
    ...TASK_NAMES.map((n) => zooModel(`oracle-${n}`, path.join(models, `oracle-${n}`))),
  ];
  const { results, reportDir } = await evaluateAndReport(suite, evalModels, { limit, out, say, elapsed: seconds });
  const analysis = analyse(results, [...TASK_NAMES], MOE_VARIANTS.map((v) => v.name), ['ties-merge']);
  await writeFile(path.join(reportDir, 'zoo-analysis.md'), formatAnalysis(analysis));
  say('');
  say(renderTable(results));
  say(formatAnalysis(analysis));
  say(`report: ${path.relative(process.cwd(), path.join(reportDir, 'report.md'))} (results.json, accuracy.svg, routing/ beside it) — ${seconds()} in all`);
}

main().catch((e: unknown) => {
  process.stderr.write(isMoeforgeError(e) ? `${e.toLine()}\n` : `${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = isMoeforgeError(e) ? 2 : 1;
});
