// Generation with the KV cache, padded batches, log-likelihoods and input errors.
import test from 'ava';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { tf } from '../core/backend.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { golden, tempDir } from './helpers/paths.js';
import { maxAbsDiff, readConfig, readTensors, writeModel } from './helpers/tiny-models.js';

const V = 128;

function argmaxRow(logits: Float32Array, row: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[row * V + i]! > logits[row * V + best]!) best = i;
  return best;
}

for (const name of ['llama-tiny', 'qwen2-tiny', 'mixtral-tiny', 'qwen2moe-tiny-mixed'] as const) {
  test.serial(`${name}: greedy generation with the KV cache equals recomputing the whole sequence each step`, async (t) => {
    const model = await CausalLM.load(golden(name));
    t.teardown(() => model.dispose());
    const prompt = [1, 15, 42, 7, 99];
    const before = tf.memory().numTensors;
    const cached = await model.generate(prompt, { maxNewTokens: 8 });
    t.is(tf.memory().numTensors, before, 'cache disposed');
    const seq = [...prompt];
    for (let i = 0; i < 8; i++) {
      const { logits } = await model.forward([seq]);
      seq.push(argmaxRow(logits, seq.length - 1));
    }
    t.deepEqual(cached, seq.slice(prompt.length));
    t.is(cached.length, 8);
  });
}

test.serial('seeded sampling is deterministic, differs across seeds, and stops at a stop token', async (t) => {
  const model = await CausalLM.load(golden('llama-tiny'));
  t.teardown(() => model.dispose());
  const opts = { maxNewTokens: 12, temperature: 1.5, topP: 0.95 };
  const a = await model.generate([1, 15], { ...opts, seed: 1 });
  const b = await model.generate([1, 15], { ...opts, seed: 1 });
  const c = await model.generate([1, 15], { ...opts, seed: 2 });
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  const stopAt = a[3]!;
  const stopped = await model.generate([1, 15], { ...opts, seed: 1, stopTokens: [stopAt] });
  t.deepEqual(stopped, a.slice(0, a.indexOf(stopAt) + 1));
});

for (const name of ['llama-tiny', 'qwen2moe-tiny'] as const) {
  test.serial(`${name}: left and right padding with an attention mask give the unpadded logits at real positions`, async (t) => {
    const model = await CausalLM.load(golden(name));
    t.teardown(() => model.dispose());
    const short = [1, 15, 42, 7, 99, 42, 63];
    const long = [0, 88, 3, 120, 56, 31, 5, 110, 64, 12, 101];
    const pad = long.length - short.length;
    const alone = (await model.forward([short])).logits;
    const longAlone = (await model.forward([long])).logits;

    const left = await model.forward([[...Array(pad).fill(0), ...short], long], {
      attentionMask: [[...Array(pad).fill(0), ...short.map(() => 1)], long.map(() => 1)],
    });
    t.true(maxAbsDiff(left.logits.subarray(pad * V, long.length * V), alone) < 1e-5, 'left-padded row');
    t.true(maxAbsDiff(left.logits.subarray(long.length * V), longAlone) < 1e-5, 'unpadded row of the batch');

    const right = await model.forward([[...short, ...Array(pad).fill(2)], long], {
      attentionMask: [[...short.map(() => 1), ...Array(pad).fill(0)], long.map(() => 1)],
    });
    t.true(maxAbsDiff(right.logits.subarray(0, short.length * V), alone) < 1e-5, 'right-padded row');
    t.false(right.logits.some(Number.isNaN), 'no NaN at padded positions');
    t.false(left.logits.some(Number.isNaN), 'no NaN at fully masked rows');
  });
}

test.serial('logLikelihood is the sum of log-softmax of the logits at the right positions', async (t) => {
  const model = await CausalLM.load(golden('qwen2-tiny'));
  t.teardown(() => model.dispose());
  const context = [1, 15, 42];
  const continuation = [7, 99, 42];
  const r = await model.logLikelihood(context, continuation);
  // By hand, in float64: logits of the full sequence; the token at position p is predicted at p - 1.
  const { logits } = await model.forward([[...context, ...continuation]]);
  let sum = 0;
  const each: number[] = [];
  for (let i = 0; i < continuation.length; i++) {
    const row = context.length - 1 + i;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[row * V + v]!);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[row * V + v]! - max);
    const lp = logits[row * V + continuation[i]!]! - max - Math.log(z);
    each.push(lp);
    sum += lp;
  }
  t.true(Math.abs(r.logprob - sum) < 1e-5, `${r.logprob} vs ${sum}`);
  r.tokenLogprobs.forEach((lp, i) => t.true(Math.abs(lp - each[i]!) < 1e-5));
  t.true(r.logprob < 0);
  t.false(r.isGreedy);
  // The greedy continuation is greedy by definition.
  const greedy = await model.generate(context, { maxNewTokens: 3 });
  t.true((await model.logLikelihood(context, greedy)).isGreedy);
  await t.throwsAsync(model.logLikelihood([], [5]), { message: /context is empty/ });
});

test.serial('an id outside the vocabulary is an invalid_argument naming the id and its position', async (t) => {
  const model = await CausalLM.load(golden('llama-tiny'));
  t.teardown(() => model.dispose());
  const err = await t.throwsAsync(model.forward([[1, 2, 3], [4, 128, 6]]));
  t.is((err as { code?: string }).code, 'invalid_argument');
  t.is(err!.message, 'token id 128 at [1, 1] is outside the vocabulary (vocab_size 128)');
  await t.throwsAsync(model.forward([[1, 2, 3], [4, 5]]), { message: /row 1 has 2 ids/ });
  await t.throwsAsync(model.forward([[1, -1]]), { message: /token id -1 at \[0, 1\]/ });
});

test('a config whose tensors disagree, an unknown model_type, an unknown rope type: one clear error each', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const config = await readConfig(golden('llama-tiny'));
  const tensors = await readTensors(golden('llama-tiny'));

  await writeModel(dir, { ...config, intermediate_size: 128 }, tensors);
  const shape = await t.throwsAsync(CausalLM.load(dir));
  t.is((shape as { code?: string }).code, 'shape_mismatch');
  t.regex(shape!.message, /^expected shape \[64, 128\], got \[64, 96\]: config.json and the weights disagree \(and 8 more problems\)$/);
  t.regex((shape as { path?: string }).path!, /model\.layers\.0\.mlp\.down_proj\.weight$/);

  tensors.delete('model.layers.2.self_attn.v_proj.weight');
  await writeModel(dir, config, tensors);
  const missing = await t.throwsAsync(CausalLM.load(dir));
  t.is((missing as { code?: string }).code, 'missing_tensor');
  t.regex((missing as { path?: string }).path!, /model\.layers\.2\.self_attn\.v_proj\.weight/);

  await writeModel(dir, { ...config, model_type: 'gpt_neox' }, tensors);
  const family = await t.throwsAsync(CausalLM.load(dir));
  t.is((family as { code?: string }).code, 'unknown_architecture');
  t.regex(family!.message, /gpt_neox/);

  await writeModel(dir, { ...config, rope_scaling: { rope_type: 'yarn-ish', factor: 2 } }, tensors);
  const rope = await t.throwsAsync(CausalLM.load(dir));
  t.is((rope as { code?: string }).code, 'unknown_architecture');
  t.regex(rope!.message, /rope type "yarn-ish"/);

  await rm(path.join(dir, 'model.safetensors'));
  const none = await t.throwsAsync(CausalLM.load(dir));
  t.truthy((none as { code?: string }).code);
});

test.serial('mistral with a sliding window of 3: KV-cache generation equals full recomputation', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const folder = golden('mistral-tiny');
  await writeModel(dir, { ...(await readConfig(folder)), sliding_window: 3 }, await readTensors(folder));
  const model = await CausalLM.load(dir);
  t.teardown(() => model.dispose());
  const prompt = [1, 15, 42, 7, 99];
  const cached = await model.generate(prompt, { maxNewTokens: 6 });
  const seq = [...prompt];
  for (let i = 0; i < 6; i++) {
    const { logits } = await model.forward([seq]);
    seq.push(argmaxRow(logits, seq.length - 1));
  }
  t.deepEqual(cached, seq.slice(prompt.length));
  const full = await CausalLM.load(folder);
  t.teardown(() => full.dispose());
  t.notDeepEqual((await full.forward([seq])).logits, (await model.forward([seq])).logits, 'the window changes the outputs');
});
