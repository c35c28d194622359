// The harness's numbers against the engine, computed by hand in the test:
// multiple-choice log-likelihoods (CausalLM.forward logits → log-softmax, summed
// over the continuation) and the choices acc / acc_norm pick; greedy generation,
// regex extraction and exact_match; perplexity per token and per byte.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { evaluate, localModel } from '../benchmarks/eval/evaluate.js';
import { bitsPerByte, exactMatch, extractAnswer, meanStderr, pickChoice, weightedPerplexity } from '../benchmarks/eval/metrics.js';
import { validateSuite } from '../benchmarks/eval/suite.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { logSoftmax } from '../core/model/sampling.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { charModel } from './fixtures/eval/models.js';
import { tempDir } from './helpers/paths.js';

let dir = '';
let folder = '';
let cleanup: () => Promise<void> = async () => {};
let model: CausalLM;
let tokenizer: Tokenizer;

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-eval-scoring-'));
  folder = await charModel(dir, 'llama-tiny');
  model = await CausalLM.load(folder);
  tokenizer = await Tokenizer.fromFolder(folder);
});
test.after.always(async () => {
  model?.dispose();
  await cleanup();
});

/** Σ log p(continuation | context) from one unbatched forward pass. */
async function byHand(context: string, continuation: string): Promise<number> {
  const ctx = tokenizer.encode(context);
  const cont = tokenizer.encode(continuation, { addSpecialTokens: false });
  const ids = [...ctx, ...cont];
  const { logits } = await model.forward([ids]);
  const v = model.config.vocabSize;
  let sum = 0;
  cont.forEach((token, k) => {
    const pos = ctx.length - 1 + k;
    sum += logSoftmax(logits.subarray(pos * v, (pos + 1) * v))[token]!;
  });
  return sum;
}

async function writeJsonl(name: string, rows: object[]): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

test.serial('multiple choice: log-likelihoods, acc and acc_norm equal a hand computation from the logits', async (t) => {
  const rows = [
    { q: 'The sky is', options: ['blue', 'a very long green answer', 'red'], gold: 0 },
    { q: 'Two plus two is', options: ['four', '4', 'fish'], gold: 1 },
    { q: 'Cats say', options: ['meow', 'woof woof woof', 'moo'], gold: 2 },
  ];
  await writeJsonl('mc.jsonl', rows);
  const suite = validateSuite(
    { name: 'mc', tasks: [{ name: 'mc', type: 'multiple_choice', data: 'mc.jsonl', prompt: 'Q: {{ q }}\nA:', choices: '{{ options }}', target: '{{ gold }}' }] },
    path.join(dir, 'suite.yml'),
  );
  // batch size 2: padded batches (the harness path) against unpadded single passes (by hand).
  const results = await evaluate(suite, [localModel(folder, folder, { batchSize: 2 })]);
  const samples = results.samples!.mc!['llama-tiny']!;
  const acc: number[] = [];
  const accNorm: number[] = [];
  for (const [row, r] of rows.entries()) {
    const lls: number[] = [];
    for (const option of r.options) lls.push(await byHand(`Q: ${r.q}\nA:`, ` ${option}`));
    const harness = samples[row]!.loglikelihoods as number[];
    harness.forEach((ll, i) => t.true(Math.abs(ll - lls[i]!) < 1e-4, `row ${row} choice ${i}: ${ll} vs ${lls[i]}`));
    // lm-eval: acc = argmax ll; acc_norm = argmax ll / len(choice in characters).
    let best = 0;
    let bestNorm = 0;
    lls.forEach((ll, i) => {
      if (ll > lls[best]!) best = i;
      if (ll / r.options[i]!.length > lls[bestNorm]! / r.options[bestNorm]!.length) bestNorm = i;
    });
    t.is(samples[row]!.pred, best);
    t.is(samples[row]!.pred_norm, bestNorm);
    acc.push(best === r.gold ? 1 : 0);
    accNorm.push(bestNorm === r.gold ? 1 : 0);
  }
  const metrics = (results.results.mc!['llama-tiny'] as { metrics: Record<string, { value: number; stderr: number | null }> }).metrics;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  t.true(Math.abs(metrics.acc!.value - mean(acc)) < 1e-9);
  t.true(Math.abs(metrics.acc_norm!.value - mean(accNorm)) < 1e-9);
  // stderr = sqrt(Σ(x-μ)²/(n-1)) / sqrt(n)
  const se = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)) / Math.sqrt(xs.length);
  t.true(Math.abs(metrics.acc!.stderr! - se(acc)) < 1e-9);
  t.true(Math.abs(metrics.acc_norm!.stderr! - se(accNorm)) < 1e-9);
});

test('acc and acc_norm part ways where a long choice wins on the sum but not per character', (t) => {
  // lls -6 (4 chars) vs -10 (20 chars): the sum picks 0, per character (-1.5 vs -0.5) picks 1.
  t.deepEqual(pickChoice([-6, -10], ['abcd', 'abcdefghijklmnopqrst']), { acc: 0, accNorm: 1 });
  // ties go to the first index, as np.argmax
  t.deepEqual(pickChoice([-2, -2], ['ab', 'cd']), { acc: 0, accNorm: 0 });
});

test('GSM8K extraction and exact_match as lm-eval configures them', (t) => {
  const options = { ignoreCase: true, ignorePunctuation: false, regexesToIgnore: [',', '\\$', '(?s).*#### ', '\\.$'] };
  const regex = '#### (\\-?[0-9\\.\\,]+)';
  t.is(extractAnswer('She pays 2 * 600 = 1,200.\n#### 1,200.', regex), '1,200.');
  // reference "…\n#### 1200" loses everything up to "#### "; the prediction loses "," and the final "."
  t.is(exactMatch(extractAnswer('so #### 1,200.', regex), 'She pays 2 * 600 = <<2*600=1200>>1200.\n#### 1200', options), 1);
  t.is(exactMatch(extractAnswer('#### -3', regex), 'x\n#### 3', options), 0);
  t.is(extractAnswer('no marker here', regex), '[invalid]');
  t.is(extractAnswer('a 12 b 34', '(\\d+)'), '12'); // the first match
  t.is(extractAnswer('abc', null), 'abc');
  t.is(meanStderr([1, 0]), 0.5);
});

test.serial('generate: greedy output, regex extraction and exact_match equal a hand computation', async (t) => {
  // What the model writes greedily after each prompt (the engine's own generate, by hand).
  const prompts = ['Q: 1+1=', 'Q: 2+2='];
  const outputs: string[] = [];
  for (const p of prompts) {
    const ids = await model.generate(tokenizer.encode(p), { maxNewTokens: 6, stopTokens: tokenizer.eosTokenIds });
    outputs.push(tokenizer.decode(ids, { skipSpecialTokens: true }));
  }
  // The regex keeps the first two characters; row 0's reference is exactly that, row 1's is not.
  const first2 = (s: string) => extractAnswer(s, '^([\\s\\S]{2})');
  await writeJsonl('gen.jsonl', [
    { q: '1+1=', a: first2(outputs[0]!) },
    { q: '2+2=', a: `${first2(outputs[1]!)}x` },
  ]);
  const suite = validateSuite(
    {
      name: 'gen',
      seed: 3,
      tasks: [{ name: 'gen', type: 'generate', data: 'gen.jsonl', prompt: 'Q: {{ q }}', target: '{{ a }}', max_new_tokens: 6, regex: '^([\\s\\S]{2})' }],
    },
    path.join(dir, 'gen-suite.yml'),
  );
  const results = await evaluate(suite, [localModel(folder, folder)]);
  const samples = results.samples!.gen!['llama-tiny']!;
  t.deepEqual(
    samples.map((s) => s.output),
    outputs,
  );
  t.deepEqual(
    samples.map((s) => s.exact_match),
    [1, 0],
  );
  const em = (results.results.gen!['llama-tiny'] as { metrics: Record<string, { value: number; stderr: number }> }).metrics.exact_match!;
  t.is(em.value, 0.5);
  t.is(em.stderr, 0.5); // sqrt(((1-.5)² + (0-.5)²) / 1) / sqrt(2)
});

test.serial('perplexity per token and per byte equal a hand computation from the logits', async (t) => {
  const texts = ['hello world', 'caf\u00e9 au lait']; // é: one (unknown) token, two UTF-8 bytes
  await writeJsonl('ppl.jsonl', texts.map((text) => ({ text })));
  let ll = 0;
  let tokens = 0;
  let bytes = 0;
  const v = model.config.vocabSize;
  for (const text of texts) {
    const ids = tokenizer.encode(text); // BOS + one id per character
    const { logits } = await model.forward([ids]);
    for (let k = 1; k < ids.length; k++) ll += logSoftmax(logits.subarray((k - 1) * v, k * v))[ids[k]!]!;
    tokens += ids.length - 1;
    bytes += Buffer.byteLength(text, 'utf8');
  }
  t.is(tokens, 11 + 12);
  t.is(bytes, 11 + 13);
  const suite = validateSuite({ name: 'ppl', tasks: [{ name: 'ppl', type: 'perplexity', data: 'ppl.jsonl', prompt: '{{ text }}' }] }, path.join(dir, 'p.yml'));
  const results = await evaluate(suite, [localModel(folder, folder)]);
  const m = (results.results.ppl!['llama-tiny'] as { metrics: Record<string, { value: number; stderr: number | null }> }).metrics;
  const close = (a: number, b: number) => Math.abs(a - b) / Math.abs(b) < 1e-6;
  t.true(close(m.token_perplexity!.value, Math.exp(-ll / tokens)), `${m.token_perplexity!.value} vs ${Math.exp(-ll / tokens)}`);
  t.true(close(m.byte_perplexity!.value, Math.exp(-ll / bytes)));
  t.true(close(m.bits_per_byte!.value, -ll / bytes / Math.LN2));
  t.not(m.token_perplexity!.value, m.byte_perplexity!.value);
  t.true(m.token_perplexity!.stderr! > 0);
  // the aggregation helpers themselves
  t.is(weightedPerplexity([{ logprob: -2, weight: 1 }, { logprob: -4, weight: 2 }]), Math.exp(2));
  t.is(bitsPerByte([{ logprob: -Math.LN2 * 8, weight: 4 }]), 2);
});

test.serial('chat_template: the prompt goes through the model chat template once (BOS from the template only)', async (t) => {
  await writeJsonl('chat.jsonl', [{ q: 'Name a color', options: ['red', 'dog'], gold: 0 }]);
  const suite = validateSuite(
    { name: 'chat', tasks: [{ name: 'chat', type: 'multiple_choice', data: 'chat.jsonl', prompt: '{{ q }}', choices: '{{ options }}', target: '{{ gold }}', chat_template: true }] },
    path.join(dir, 'chat.yml'),
  );
  const results = await evaluate(suite, [localModel(folder, folder)]);
  const lls = results.samples!.chat!['llama-tiny']![0]!.loglikelihoods as number[];
  const context = tokenizer.applyChatTemplate([{ role: 'user', content: 'Name a color' }], { addGenerationPrompt: true });
  t.is(context, '<s><|user|>\nName a color<|end|>\n<|assistant|>\n');
  // lm-eval's _encode_pair moves the context's trailing whitespace (here the template's
  // final "\n") to the continuation; the choice follows it directly (no target delimiter).
  const ids = tokenizer.encode(context.trimEnd(), { addSpecialTokens: false });
  t.is(ids.filter((id) => id === tokenizer.bosTokenId).length, 1);
  const v = model.config.vocabSize;
  for (const [k, option] of ['red', 'dog'].entries()) {
    const cont = tokenizer.encode(`\n${option}`, { addSpecialTokens: false });
    const { logits } = await model.forward([[...ids, ...cont]]);
    let ll = 0;
    cont.forEach((token, j) => (ll += logSoftmax(logits.subarray((ids.length - 1 + j) * v, (ids.length + j) * v))[token]!));
    t.true(Math.abs(ll - lls[k]!) < 1e-4, `${option}: ${ll} vs ${lls[k]}`);
  }
});

test.serial('generate: the output is cut at the first stop string (and a one-token stop string ends generation)', async (t) => {
  const ids = await model.generate(tokenizer.encode('Q: 7'), { maxNewTokens: 8, stopTokens: tokenizer.eosTokenIds });
  const full = tokenizer.decode(ids, { skipSpecialTokens: true });
  const stop = full[2]!; // a character the greedy output holds at index 2: the harness must return what comes before
  await writeJsonl('stop.jsonl', [{ q: '7' }]);
  const suite = validateSuite(
    { name: 'stop', tasks: [{ name: 'stop', type: 'generate', data: 'stop.jsonl', prompt: 'Q: {{ q }}', target: 'x', max_new_tokens: 8, stop: [stop] }] },
    path.join(dir, 'stop.yml'),
  );
  const results = await evaluate(suite, [localModel(folder, folder)]);
  t.is(results.samples!.stop!['llama-tiny']![0]!.output, full.slice(0, full.indexOf(stop)));
});
