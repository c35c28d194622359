// What every zoo demo shares: its workspace (the zoo's manifest and model folders, a
// fresh output folder with recipes/ and models/), and the evaluation step: score the
// models on the suite with one progress line per model, then write the report
// (results.json, report.md, SVG charts) under <out>/report.
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { TASK_NAMES, type TaskName } from '../zoo/tasks.js';
import { evaluate, localModel, type EvalModel } from '../eval/evaluate.js';
import { writeReport } from '../eval/report.js';
import type { EvalResults } from '../eval/results.js';
import type { Suite } from '../eval/suite.js';

/** `[outDir] [--limit N]`, the arguments of the zoo report scripts. */
export function parseReportArgs(argv: string[], defaultOut: string): { out: string; limit: number } {
  let out = defaultOut;
  let limit = 100;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--limit') limit = Number(argv[++i]);
    else out = a;
  }
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit expects a positive whole number');
  return { out: path.resolve(out), limit };
}

export interface DemoWorkspace {
  /** The zoo's model folders by name. */
  zoo: Record<'base' | TaskName, string>;
  /** zoo.json's seed and held-out test size (what the zoo's data was drawn with). */
  seed: number;
  testSize: number;
  recipes: string;
  models: string;
}

/** Reads the zoo in `zooDir` and empties `out`, creating recipes/, models/ and any `extra` subfolders. */
export async function demoWorkspace(zooDir: string, out: string, extra: string[] = []): Promise<DemoWorkspace> {
  const manifest = JSON.parse(readFileSync(path.join(zooDir, 'zoo.json'), 'utf8')) as { seed: number; testSize?: number };
  const zoo = Object.fromEntries(['base', ...TASK_NAMES].map((n) => [n, path.join(zooDir, n)])) as Record<'base' | TaskName, string>;
  const recipes = path.join(out, 'recipes');
  const models = path.join(out, 'models');
  await rm(out, { recursive: true, force: true });
  for (const d of [recipes, models, ...extra.map((e) => path.join(out, e))]) await mkdir(d, { recursive: true });
  return { zoo, seed: manifest.seed, testSize: manifest.testSize ?? 200, recipes, models };
}

/** A local model folder under a display name. */
export function zooModel(name: string, folder: string): EvalModel {
  return localModel(folder, folder, { name });
}

export async function evaluateAndReport(
  suite: Suite,
  models: EvalModel[],
  options: { limit: number; out: string; say: (line: string) => void; elapsed: () => string },
): Promise<{ results: EvalResults; reportDir: string }> {
  const { limit, say, elapsed } = options;
  say(`  evaluating ${models.length} models on ${suite.tasks.length} tasks × ${limit} samples…`);
  let lastModel = '';
  const results = await evaluate(suite, models, {
    limit,
    onProgress: (e) => {
      if (e.model !== lastModel) {
        lastModel = e.model;
        say(`    ${e.model} [${elapsed()}]`);
      }
    },
    onModelError: (m, e) => say(`    ${m}: ${e.toLine()}`),
  });
  const reportDir = path.join(options.out, 'report');
  await writeReport(results, reportDir);
  return { results, reportDir };
}
