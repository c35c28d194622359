// `moeforge zoo --out <folder>`: trains the expert zoo (benchmarks/zoo/zoo.ts):
// a tiny char-level llama base and four MLP-only experts (caesar, atbash,
// complement, facts), written as HF folders with the zoo suite and held-out test sets.
import type { Command } from 'commander';
import { MoeforgeError } from '../../core/errors.js';
import { TASK_NAMES } from '../../benchmarks/zoo/tasks.js';
import { generateZoo } from '../../benchmarks/zoo/zoo.js';

function wholeNumber(s: string | undefined, flag: string, min: number): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < min) {
    throw new MoeforgeError('invalid_argument', `"${s}" is not a whole number >= ${min}`, { path: flag });
  }
  return n;
}

export function register(program: Command): void {
  program
    .command('zoo')
    .description('train the expert zoo: a tiny base + caesar/atbash/complement/facts experts, the zoo suite and its test sets')
    .requiredOption('--out <folder>', 'output folder (one model folder per model, zoo-suite.yml, data/, zoo.json)')
    .option('--steps <n>', 'steps of the base model\'s copy pretraining', '500')
    .option('--expert-steps <n>', 'MLP-only fine-tuning steps per expert', '450')
    .option('--seed <s>', 'random seed', '0')
    .option('--quiet', 'no progress lines')
    .addHelpText('after', '\nExample:\n  $ moeforge zoo --out ./zoo --seed 0')
    .action(async (opts: { out: string; steps: string; expertSteps: string; seed: string; quiet?: boolean }) => {
      const baseSteps = wholeNumber(opts.steps, '--steps', 1)!;
      const expertSteps = wholeNumber(opts.expertSteps, '--expert-steps', 1)!;
      const seed = wholeNumber(opts.seed, '--seed', 0)!;
      const log = opts.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
      const r = await generateZoo(opts.out, { seed, baseSteps, expertSteps, ...(log ? { log } : {}) });
      const header = ['model', ...TASK_NAMES].join('\t');
      const rows = Object.entries(r.accuracy).map(([m, acc]) => [m, ...TASK_NAMES.map((t) => `${(100 * acc[t]).toFixed(1)}%`)].join('\t'));
      process.stdout.write(`${header}\n${rows.join('\n')}\nzoo written to ${opts.out} in ${r.seconds.toFixed(0)} s\n`);
    });
}
