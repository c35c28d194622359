// `moeforge inspect <model>`: what a checkpoint is, from config.json and the
// safetensors headers only (no weights read) — a local folder, or a Hub repo
// whose headers are read remotely before anything is downloaded.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { createContainer, describeModel, formatSummary, summarizeFolder, summarizeModel, type ModelSummary } from '../../index.js';
import { formatHeteroSummary, heteroHasErrors, summarizeHeteroFolder } from '../../core/hetero/inspect.js';
import { isHeteroFolder } from '../../core/hetero/load.js';

export async function inspectModel(ref: string): Promise<ModelSummary> {
  if (existsSync(ref)) return summarizeFolder(ref);
  const description = await describeModel(createContainer(), ref);
  const sizes = description.fileSizes ?? {};
  return summarizeModel({
    rawConfig: description.config,
    tensors: description.tensors,
    files: description.files.map((name) => ({ name, bytes: sizes[name] ?? 0 })),
    label: `${ref}/config.json`,
  });
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('describe a model (local folder or Hub org/name[@revision]): architecture, sizes, experts, parameters, dtypes, validation problems')
    .argument('<model>', 'a model folder or a Hub repo id')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nExamples:\n  $ moeforge inspect ../shared/golden/mixtral-tiny\n  $ moeforge inspect mistralai/Mistral-7B-v0.1 --json')
    .action(async (ref: string, opts: { json?: boolean }) => {
      // An exported heterogeneous MoE (trust_remote_code, issue 9) is described expert by expert.
      if (existsSync(ref) && (await isHeteroFolder(ref))) {
        const h = await summarizeHeteroFolder(ref);
        process.stdout.write(opts.json ? `${JSON.stringify(h, null, 2)}\n` : `${formatHeteroSummary(h)}\n`);
        if (heteroHasErrors(h)) process.exitCode = 2;
        return;
      }
      const summary = await inspectModel(ref);
      process.stdout.write(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
      // Validation errors make inspect fail like a linter: the summary is printed, exit code 2.
      if (summary.problems.some((p) => p.severity === 'error')) process.exitCode = 2;
    });
}
