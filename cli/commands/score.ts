// `moeforge score <model> --text "..."`: per-token log-probabilities of a text
// under the model (each token given the ones before it; the first, usually BOS,
// has none) and the perplexity exp(-mean log p).
import type { Command } from 'commander';
import { MoeforgeError } from '../../core/errors.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { loadModelFromOptions, withModelOptions, type ModelCliOptions } from './forward.js';

export interface ScoreResult {
  tokens: { id: number; token: string; logprob: number }[];
  meanLogprob: number;
  perplexity: number;
}

export function register(program: Command): void {
  withModelOptions(
    program
      .command('score')
      .description('print per-token log-probabilities and the perplexity of a text')
      .argument('<model>', 'model folder (config.json, safetensors, tokenizer files)')
      .requiredOption('--text <text>', 'the text to score')
      .option('--json', 'print JSON'),
  )
    .addHelpText('after', '\nExample:\n  $ moeforge score ./my-moe --text "The capital of France is Paris."')
    .action(async (folder: string, opts: ModelCliOptions & { text: string; json?: boolean }) => {
      const tokenizer = await Tokenizer.fromFolder(folder);
      const ids = tokenizer.encode(opts.text);
      if (ids.length < 2) {
        throw new MoeforgeError('invalid_argument', `the text gives ${ids.length} token(s); scoring needs at least 2`, { path: '--text' });
      }
      const model = await loadModelFromOptions(folder, opts);
      let logprobs: number[];
      try {
        logprobs = await model.tokenLogprobs(ids);
      } finally {
        model.dispose();
      }
      const meanLogprob = logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
      const result: ScoreResult = {
        tokens: logprobs.map((logprob, i) => ({ id: ids[i + 1]!, token: tokenizer.decode([ids[i + 1]!]), logprob })),
        meanLogprob,
        perplexity: Math.exp(-meanLogprob),
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      process.stdout.write('position\tid\tlogprob\ttoken\n');
      result.tokens.forEach((t, i) => process.stdout.write(`${i + 1}\t${t.id}\t${t.logprob.toFixed(6)}\t${JSON.stringify(t.token)}\n`));
      process.stdout.write(`perplexity ${result.perplexity.toFixed(4)} over ${logprobs.length} tokens (mean log-prob ${meanLogprob.toFixed(6)})\n`);
    });
}
