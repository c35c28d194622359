// `moeforge pull org/name[@rev]`: fetches a Hub model's config and tokenizer files
// (and its safetensors with --include-weights) into the standard Hugging Face cache
// and prints the snapshot folder.
import type { Command } from 'commander';
import { hubContext } from '../../experts/hub/context.js';
import { pullModel } from '../../experts/hub/pull.js';
import { formatBytes } from '../../core/inspect.js';

export function register(program: Command): void {
  program
    .command('pull')
    .description('download a Hub model (config, tokenizer; weights with --include-weights) into the Hugging Face cache and print its folder')
    .argument('<model>', 'Hub model reference: org/name or org/name@revision (branch, tag or commit)')
    .option('--include-weights', 'also download the safetensors weights')
    .option('--refresh', 'ask the Hub where the revision points even when the cache holds it')
    .action(async (model: string, opts: { includeWeights?: boolean; refresh?: boolean }) => {
      const done = new Set<string>();
      const result = await pullModel(model, hubContext(), {
        includeWeights: opts.includeWeights ?? false,
        refresh: opts.refresh ?? false,
        // One line per file when it completes: readable in logs and terminals alike.
        onProgress: ({ file, bytes, total }) => {
          if (bytes === total && !done.has(file)) {
            done.add(file);
            process.stderr.write(`  ${file} (${formatBytes(total)})\n`);
          }
        },
      });
      if (result.fromCache) process.stderr.write(`${result.repo}: served from the cache (commit ${result.commit})\n`);
      process.stdout.write(`${result.folder}\n`);
    });
}
