// `moeforge push <folder> <org/name>`: uploads a model folder to the Hub, creating
// the repo (and branch) if needed. The token comes from HF_TOKEN or the token file
// and is never printed.
import type { Command } from 'commander';
import { pushFolder } from '../../export/push.js';

export interface PushCommandOptions {
  private?: boolean;
  revision?: string;
  message?: string;
}

/** Uploads with one line per finished file on stderr; prints the repo URL on stdout. Shared with `build --push`. */
export async function runPush(folder: string, repo: string, opts: PushCommandOptions): Promise<void> {
  const reported = new Set<string>();
  const result = await pushFolder(folder, repo, {
    private: opts.private ?? false,
    revision: opts.revision ?? 'main',
    ...(opts.message !== undefined ? { message: opts.message } : {}),
    onProgress: ({ file, progress, state }) => {
      if (state === 'uploading' && progress >= 1 && !reported.has(file)) {
        reported.add(file);
        process.stderr.write(`  uploaded ${file}\n`);
      }
    },
  });
  process.stderr.write(`${result.created ? 'created' : 'updated'} ${result.repo} (${result.branch}), commit ${result.commit}\n`);
  process.stdout.write(`${result.url}\n`);
}

export function register(program: Command): void {
  program
    .command('push')
    .description('upload a model folder to the Hugging Face Hub (creates the repo if needed)')
    .argument('<folder>', 'the model folder (e.g. a build output)')
    .argument('<repo>', 'target Hub repo: org/name')
    .option('--private', 'create the repo as private')
    .option('--revision <branch>', 'target branch (created from main if missing)', 'main')
    .option('--message <text>', 'commit message')
    .addHelpText('after', '\nExample:\n  $ HF_TOKEN=hf_... moeforge push ./my-moe my-org/my-moe --private --message "first build"')
    .action(async (folder: string, repo: string, opts: PushCommandOptions) => {
      await runPush(folder, repo, opts);
    });
}
