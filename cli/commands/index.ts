// Every CLI command, one file each under cli/commands/. Each exports
// `register(program)`; this is the single list of them.
import type { Command } from 'commander';

export function registerCommands(program: Command): void {
  void program;
}
