// The evaluation step every zoo demo shares: score the models on the suite with
// one progress line per model, then write the report (results.json, report.md,
// SVG charts) under <out>/report.
import path from 'node:path';
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
