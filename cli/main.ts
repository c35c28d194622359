// The `moeforge` command: parse, call the public API, print. Thin on purpose.
import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { isMoeforgeError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { registerCommands } from './commands/index.js';

export function createProgram(): Command {
  const program = new Command();
  program
    .name('moeforge')
    .description('Build Mixture-of-Experts models out of dense fine-tuned ones (mergekit-moe recipes, Hugging Face formats).')
    .version(VERSION)
    .option('--debug', 'print stack traces for user errors too')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were printed by commander.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isMoeforgeError(e)) {
      process.stderr.write(`${e.toLine()}\n`);
      if (debug) process.stderr.write(`${e.stack ?? ''}\n`);
      return 2;
    }
    process.stderr.write(`moeforge: internal error (a bug, please report it): ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

