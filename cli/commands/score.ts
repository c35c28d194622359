// `moeforge score <model> --text "..."`: per-token log-probabilities of a text
// under the model (each token given the ones before it; the first, usually BOS,
// has none) and the perplexity exp(-mean log p). A heterogeneous MoE scores the text
// under the mixture routed on the whole text (HeteroMoE.tokenLogprobs), and reports
// that routing.
import type { Command } from 'commander';
import { MoeforgeError } from '../../core/errors.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { formatRouting, openModelFolder, withModelOptions, type ModelCliOptions } from '../model-folder.js';

export interface ScoreResult {
  tokens: { id: number; token: string; logprob: number }[];
  meanLogprob: number;
  perplexity: number;
  /** Heterogeneous MoE only: every expert's weight for this text (0 = not used). */
  routing?: { expert: string; weight: number }[];
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
      const m = await openModelFolder(folder, opts);
      let logprobs: number[];
      let routing: ScoreResult['routing'];
      try {
        if (m.kind === 'hetero') {
          const r = await m.model.routedTokenLogprobs(ids);
          logprobs = r.logprobs;
          routing = r.weights.map((weight, e) => ({ expert: m.model.names[e]!, weight }));
        } else {
          logprobs = await m.model.tokenLogprobs(ids);
        }
      } finally {
        m.model.dispose();
      }
      const meanLogprob = logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
      const result: ScoreResult = {
        tokens: logprobs.map((logprob, i) => ({ id: ids[i + 1]!, token: tokenizer.decode([ids[i + 1]!]), logprob })),
        meanLogprob,
        perplexity: Math.exp(-meanLogprob),
        ...(routing ? { routing } : {}),
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      process.stdout.write('position\tid\tlogprob\ttoken\n');
      result.tokens.forEach((t, i) => process.stdout.write(`${i + 1}\t${t.id}\t${t.logprob.toFixed(6)}\t${JSON.stringify(t.token)}\n`));
      process.stdout.write(`perplexity ${result.perplexity.toFixed(4)} over ${logprobs.length} tokens (mean log-prob ${meanLogprob.toFixed(6)})\n`);
      if (routing) {
        process.stdout.write(`routed to ${formatRouting(routing.map((r) => r.expert), routing.map((r) => r.weight))}\n`);
      }
    });
}
