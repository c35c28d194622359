// The forward / generate / score commands as a user runs them (a child process),
// checked against the goldens and against the engine called in-process.
import test from 'ava';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { charTokenizerFiles } from '../benchmarks/synthetic/char-tokenizer.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { main } from '../cli/main.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { golden, tempDir } from './helpers/paths.js';
import { maxAbsDiff, readConfig, readTensors, writeModel } from './helpers/tiny-models.js';

/**
 * The CLI in this process (main() as bin.ts calls it), output captured: a child
 * process costs seconds of tsx + tfjs start-up each, so only a few tests spawn one.
 * Tests calling it are serial: they swap process.stdout/stderr.write.
 */
async function runMain(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'moeforge', ...args]);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** llama-tiny plus a char tokenizer (vocab 128), so it takes text. */
async function textModel(dir: string): Promise<string> {
  for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(golden('llama-tiny'), f), path.join(dir, f));
  for (const [name, text] of Object.entries(charTokenizerFiles({ vocabSize: 128, bosId: 1, eosId: 2 }))) {
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

test.serial('forward writes the goldens\' tensors (names, shapes, values), resident and streamed', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const folder = golden('qwen2moe-tiny-mixed');
  const expected = await SafetensorsReader.open(path.join(folder, 'expected.safetensors'));
  t.teardown(() => expected.close());
  const outputs = [path.join(dir, 'resident.safetensors'), path.join(dir, 'streamed.safetensors')];
  const resident = await runCli(['forward', folder, '--input-ids', path.join(folder, 'expected.safetensors'), '--output', outputs[0]!]);
  t.is(resident.code, 0, resident.stderr);
  t.regex(resident.stdout, /logits \[2, 12, 128\], 4 hidden states, 2 router logits \(resident\)/);
  const streamed = await runMain([
    'forward',
    folder,
    '--input-ids',
    path.join(folder, 'expected.safetensors'),
    '--output',
    outputs[1]!,
    '--max-resident-bytes',
    '300K',
  ]);
  t.is(streamed.code, 0, streamed.stderr);
  t.regex(streamed.stdout, /\(streamed\)/);
  for (const file of outputs) {
    const got = await SafetensorsReader.open(file);
    t.deepEqual([...got.tensors.keys()].sort(), [...expected.tensors.keys()].sort());
    for (const [name, h] of expected.tensors) {
      t.deepEqual(got.tensors.get(name)!.shape, h.shape, name);
      t.is(got.tensors.get(name)!.dtype, h.dtype, name);
      if (name === 'input_ids') t.deepEqual(await got.readTyped(name), await expected.readTyped(name));
      else t.true(maxAbsDiff(await got.readFloat32(name), await expected.readFloat32(name)) < 1e-4, `${file}: ${name}`);
    }
    await got.close();
  }
});

test.serial('generate and score: the engine\'s greedy tokens and log-probabilities, through the model\'s tokenizer', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const folder = await textModel(dir);
  const tokenizer = await Tokenizer.fromFolder(folder);
  const model = await CausalLM.load(folder);
  t.teardown(() => model.dispose());

  const prompt = 'Hello, experts';
  const greedy = await model.generate(tokenizer.encode(prompt), { maxNewTokens: 6, stopTokens: tokenizer.eosTokenIds });
  const gen = await runMain(['generate', folder, '--prompt', prompt, '--max-new-tokens', '6']);
  t.is(gen.code, 0, gen.stderr);
  t.is(gen.stdout, `${tokenizer.decode(greedy, { skipSpecialTokens: true })}\n`);

  const chatIds = tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }), {
    addSpecialTokens: false,
  });
  const sampled = await model.generate(chatIds, { maxNewTokens: 5, temperature: 0.8, seed: 3, topP: 1, stopTokens: tokenizer.eosTokenIds });
  const chat = await runMain(['generate', folder, '--chat', '--prompt', 'hi', '--max-new-tokens', '5', '--temperature', '0.8', '--seed', '3']);
  t.is(chat.code, 0, chat.stderr);
  t.is(chat.stdout, `${tokenizer.decode(sampled, { skipSpecialTokens: true })}\n`);

  const text = 'The cat sat.';
  const ids = tokenizer.encode(text);
  const logprobs = await model.tokenLogprobs(ids);
  const score = await runMain(['score', folder, '--text', text, '--json']);
  t.is(score.code, 0, score.stderr);
  const parsed = JSON.parse(score.stdout) as { tokens: { id: number; logprob: number }[]; perplexity: number };
  t.deepEqual(parsed.tokens.map((x) => x.id), ids.slice(1));
  parsed.tokens.forEach((x, i) => t.true(Math.abs(x.logprob - logprobs[i]!) < 1e-9));
  const ppl = Math.exp(-logprobs.reduce((a, b) => a + b, 0) / logprobs.length);
  t.true(Math.abs(parsed.perplexity - ppl) < 1e-9);
  t.true(ppl > 1 && ppl < 1000);
  const table = await runMain(['score', folder, '--text', text]);
  t.is(table.code, 0);
  const lines = table.stdout.trim().split('\n');
  t.is(lines.length, 1 + ids.length - 1 + 1);
  t.regex(lines[lines.length - 1]!, new RegExp(`^perplexity ${ppl.toFixed(4)} over ${ids.length - 1} tokens`));
});

test.serial('bad inputs: one line on stderr, exit code 2', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const llama = golden('llama-tiny');
  const config = await readConfig(llama);
  const tensors = await readTensors(llama);
  const bad = async (name: string, cfg: Record<string, unknown>) => {
    const folder = path.join(dir, name);
    await import('node:fs/promises').then((fs) => fs.mkdir(folder));
    return writeModel(folder, cfg, tensors);
  };
  const cases: [string[], RegExp][] = [
    [['forward', llama, '--input-ids', '1,2,128', '--output', path.join(dir, 'o.safetensors')], /^error\[invalid_argument\]: input_ids: token id 128 at \[0, 2\] is outside the vocabulary \(vocab_size 128\)$/],
    [['forward', await bad('shape', { ...config, hidden_size: 32 }), '--input-ids', '1', '--output', path.join(dir, 'o.safetensors')], /^error\[shape_mismatch\]: \S+\/shape: lm_head\.weight: expected shape \[128, 32\], got \[128, 64\]: config.json and the weights disagree \(and 29 more problems\)$/],
    [['forward', await bad('family', { ...config, model_type: 'gpt_neox' }), '--input-ids', '1', '--output', path.join(dir, 'o.safetensors')], /^error\[unknown_architecture\]: .*gpt_neox/],
    [['forward', await bad('rope', { ...config, rope_scaling: { rope_type: 'yarn-ish', factor: 2 } }), '--input-ids', '1', '--output', path.join(dir, 'o.safetensors')], /^error\[unknown_architecture\]: .*rope type "yarn-ish"/],
    [['forward', llama, '--input-ids', '1,x', '--output', path.join(dir, 'o.safetensors')], /^error\[invalid_argument\]: --input-ids: 'x' \(row 0, item 1\) is not an integer token id$/],
    [['forward', llama, '--input-ids', '1', '--output', path.join(dir, 'o.safetensors'), '--backend', 'tpu'], /^error\[invalid_argument\]: --backend: unknown backend 'tpu'/],
    [['forward', llama, '--input-ids', '1', '--output', path.join(dir, 'o.safetensors'), '--max-resident-bytes', '10'], /^error\[out_of_memory\]: .*streamed mode needs \d+ bytes .* over --max-resident-bytes 10$/],
    [['score', llama, '--text', 'hi'], /^error\[missing_file\]: .*tokenizer.json: cannot read tokenizer file: no such file or directory$/],
  ];
  for (const [i, [args, pattern]] of cases.entries()) {
    // The first case through the real binary, the rest in-process (same main()).
    const r = i === 0 ? await runCli(args) : await runMain(args);
    t.is(r.code, 2, `${args.join(' ')}\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    t.is(lines.length, 1, r.stderr);
    t.regex(lines[0]!, pattern);
  }
});
