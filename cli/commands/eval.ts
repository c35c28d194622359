// `moeforge eval <model>... --suite <suite.yml>`: run a suite's tasks on several
// models side by side and print the table; with --out, write results.json, the
// Markdown report, the SVG charts and per-sample records. A model that cannot be
// loaded or run gets one error line and the others are still reported (exit 2).
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError } from '../../core/errors.js';
import { causalLMScorer, evaluate, type EvalModel } from '../../benchmarks/eval/evaluate.js';
import { isHeteroFolder } from '../../core/hetero/load.js';
import { loadHeteroScorer } from '../../core/hetero/scorer.js';
import { writeReport } from '../../benchmarks/eval/report.js';
import { loadSuite } from '../../benchmarks/eval/suite.js';
import { renderTable } from '../../benchmarks/eval/table.js';
import { isRemoteModelRef, remoteModel } from '../../benchmarks/eval/remote/open.js';
import { createContainer, fetchModel } from '../../index.js';
import { loadModelFromOptions, loadOptionsFromCli, withModelOptions, type ModelCliOptions } from '../model-folder.js';

interface EvalCliOptions extends ModelCliOptions {
  suite: string;
  limit?: string;
  out?: string;
  seed?: string;
  batchSize?: string;
}

function positiveInt(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new MoeforgeError('invalid_argument', `expected an integer ≥ ${min}, got '${text}'`, { path: flag });
  }
  return n;
}

async function isFolder(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** A model argument: a local folder, else a Hub reference fetched through the registered sources. */
function modelFor(ref: string, opts: EvalCliOptions, batchSize: number): EvalModel {
  if (isRemoteModelRef(ref)) return remoteModel(ref, { batchSize }); // openai:<base-url>#<model-name>: an OpenAI-compatible server
  const name = path.basename(ref.replace(/[/\\]+$/, '')) || ref;
  return {
    name,
    ref,
    revision: null,
    async load() {
      let folder = ref;
      if (!(await isFolder(ref))) {
        // Anything that is not a folder: a Hub id, or a path that does not exist (the source says which).
        const files = await fetchModel(createContainer(), ref);
        folder = files.folder;
        this.revision = files.revision ?? null;
      }
      // An exported heterogeneous MoE (issue 9) scores through its own Scorer, routed per sequence.
      if (await isHeteroFolder(folder)) return loadHeteroScorer(folder, await loadOptionsFromCli(folder, opts));
      // --backend / --mode / --max-resident-bytes as the other model commands read them.
      return causalLMScorer(folder, () => loadModelFromOptions(folder, opts), batchSize);
    },
  };
}

export function register(program: Command): void {
  withModelOptions(
    program
      .command('eval')
      .description('evaluate models side by side on a suite of tasks (multiple choice, generation, perplexity)')
      .argument('<models...>', 'model folders or Hub ids (org/name[@revision])')
      .requiredOption('--suite <file>', 'the suite YAML (tasks, data files, prompts)')
      .option('--limit <n>', 'evaluate only the first N samples of each task')
      .option('--out <folder>', 'write results.json, report.md, SVG charts and per-sample records here')
      .option('--seed <n>', "override the suite's seed (few-shot draws, sampling, bootstrap)")
      .option('--batch-size <n>', 'sequences per forward pass when scoring (default 8)'),
  )
    .addHelpText('after', '\nExample:\n  $ moeforge eval ./expert-a ./expert-b ./my-moe --suite zoo/suite.yml --out report/')
    .action(async (refs: string[], opts: EvalCliOptions) => {
      const limit = positiveInt(opts.limit, '--limit', 1);
      const seed = positiveInt(opts.seed, '--seed', 0);
      const batchSize = positiveInt(opts.batchSize, '--batch-size', 1) ?? 8;
      const suite = await loadSuite(opts.suite);
      const bar = process.stderr.isTTY ? new SingleBar({ format: '{model} · {task} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true, stream: process.stderr }) : undefined;
      let current = '';
      let failed = false;
      const results = await evaluate(
        suite,
        refs.map((ref) => modelFor(ref, opts, batchSize)),
        {
          ...(limit !== undefined ? { limit } : {}),
          ...(seed !== undefined ? { seed } : {}),
          batchSize,
          suiteLabel: opts.suite,
          onProgress: ({ model, task, done, total }) => {
            if (!bar) return;
            const key = `${model}/${task}`;
            if (key !== current) {
              if (current) bar.stop();
              bar.start(total, done, { model, task });
              current = key;
            } else bar.update(done);
          },
          onModelError: (_model, e) => {
            failed = true;
            if (bar && current) {
              bar.stop();
              current = '';
            }
            process.stderr.write(`${e.toLine()}\n`);
          },
        },
      );
      if (bar && current) bar.stop();
      process.stdout.write(renderTable(results));
      if (opts.out) {
        await writeReport(results, opts.out);
        process.stdout.write(`report: ${path.join(opts.out, 'report.md')} (results.json, charts and samples beside it)\n`);
      }
      if (failed) process.exitCode = 2;
    });
}
