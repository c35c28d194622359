// `moeforge generate <model> --prompt "..."`: text in, text out, with the model's
// own tokenizer (and chat template with --chat), greedy by default, seeded
// sampling with --temperature / --top-p, stopping at the tokenizer's EOS ids.
// A heterogeneous MoE is routed once on the prompt; the experts it chose, with their
// weights, go to stderr (stdout stays the text alone).
import type { Command } from 'commander';
import { MoeforgeError } from '../../core/errors.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { formatRouting, openModelFolder, withModelOptions, type ModelCliOptions } from '../model-folder.js';

function number(text: string | undefined, flag: string, check: (v: number) => boolean, what: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || !check(v)) {
    throw new MoeforgeError('invalid_argument', `expected ${what}, got '${text}'`, { path: flag });
  }
  return v;
}

export function register(program: Command): void {
  withModelOptions(
    program
      .command('generate')
      .description('generate text from a prompt (KV cache; greedy unless --temperature is set)')
      .argument('<model>', 'model folder (config.json, safetensors, tokenizer files)')
      .requiredOption('--prompt <text>', 'the prompt')
      .option('--chat', 'wrap the prompt as a user message with the model\'s chat template')
      .option('--system <text>', 'system message (with --chat)')
      .option('--max-new-tokens <n>', 'most tokens to generate', '64')
      .option('--temperature <t>', 'sampling temperature (0 = greedy)', '0')
      .option('--top-p <p>', 'nucleus sampling threshold', '1')
      .option('--seed <s>', 'random seed for sampling', '0'),
  )
    .addHelpText('after', '\nExample:\n  $ moeforge generate ./my-moe --chat --prompt "Write a haiku about experts" --temperature 0.7 --seed 1')
    .action(
      async (
        folder: string,
        opts: ModelCliOptions & { prompt: string; chat?: boolean; system?: string; maxNewTokens: string; temperature: string; topP: string; seed: string },
      ) => {
        const maxNewTokens = number(opts.maxNewTokens, '--max-new-tokens', (v) => Number.isInteger(v) && v > 0, 'a positive integer')!;
        const temperature = number(opts.temperature, '--temperature', (v) => v >= 0, 'a number >= 0')!;
        const topP = number(opts.topP, '--top-p', (v) => v > 0 && v <= 1, 'a number in (0, 1]')!;
        const seed = number(opts.seed, '--seed', (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer')!;
        const tokenizer = await Tokenizer.fromFolder(folder);
        let ids: number[];
        if (opts.chat) {
          const messages = [...(opts.system ? [{ role: 'system', content: opts.system }] : []), { role: 'user', content: opts.prompt }];
          // apply_chat_template(tokenize=True) encodes without special tokens: the template writes them.
          ids = tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
        } else {
          ids = tokenizer.encode(opts.prompt);
        }
        const m = await openModelFolder(folder, opts);
        try {
          const options = { maxNewTokens, temperature, topP, seed, stopTokens: tokenizer.eosTokenIds };
          let out: number[];
          if (m.kind === 'hetero') {
            // Routed once on the prompt: reported, then generated with those weights.
            const w = await m.model.route(ids);
            process.stderr.write(`routed to ${formatRouting(m.model.names, w)}\n`);
            out = await m.model.generate(ids, options, w);
          } else {
            out = await m.model.generate(ids, options);
          }
          process.stdout.write(`${tokenizer.decode(out, { skipSpecialTokens: true })}\n`);
        } finally {
          m.model.dispose();
        }
      },
    );
}
