// MergeME's perplexity routing as an evaluation baseline: for each sequence the router
// picks the expert whose perplexity, computed here directly from each CausalLM's
// token log-probabilities, is lowest; scoring and generation are then that expert's,
// exactly; experts with different vocabularies are refused.
import test from 'ava';
import path from 'node:path';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { CausalLMScorer, type Scorer } from '../benchmarks/eval/scorer.js';
import { PerplexityRouter, PerplexityRouterScorer } from '../routers/baselines/perplexity-router.js';
import { goldenCopy } from './helpers/build-fixtures.js';
import { tempDir } from './helpers/paths.js';

const TEXTS = [
  'def main(): print(x)',
  'for i in range(10):',
  '12 + 35 = 47',
  '7 * 8 = 56 and 9 * 9 = 81',
  'THE QUICK BROWN FOX',
  'hello there, my friend',
  '[{(<>)}] ~~ ## @@',
  'what a lovely day it is',
  'import numpy as np',
  '100 / 4 = 25',
  'zzz yyy xxx www',
  'Once upon a time',
];

test('each sequence goes to the expert with the lowest perplexity; scores and generations are that expert\'s', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const folders = [base];
  for (let i = 0; i < 2; i++) {
    const f = path.join(dir, `e${i}`);
    await writeSyntheticModel(f, {
      family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 1,
      perturb: { from: base, scale: 0.05, seed: 40 + i },
    });
    folders.push(f);
  }
  const tok = await Tokenizer.fromFolder(base);
  const router = await PerplexityRouter.load(folders);
  t.teardown(() => router.dispose());
  const direct = await Promise.all(folders.map((f) => CausalLM.load(f)));
  t.teardown(() => direct.forEach((m) => m.dispose()));

  const chosen = new Set<number>();
  for (const text of TEXTS) {
    const ids = tok.encode(text);
    const ppl: number[] = [];
    for (const m of direct) {
      const lp = await m.tokenLogprobs(ids);
      ppl.push(Math.exp(-lp.reduce((a, b) => a + b, 0) / lp.length));
    }
    const best = ppl.indexOf(Math.min(...ppl));
    const decision = await router.route(ids);
    t.is(decision.expert, best, `"${text}": perplexities ${ppl.map((p) => p.toFixed(4)).join(', ')}`);
    decision.perplexities.forEach((p, i) => t.true(Math.abs(p - ppl[i]!) <= 1e-9 * ppl[i]!));
    chosen.add(best);

    // Scoring a continuation: routed on the context only, then exactly the chosen expert's numbers.
    const cont = tok.encode(' ok', { addSpecialTokens: false });
    const ll = await router.logLikelihood(ids, cont);
    const want = await direct[best]!.logLikelihood(ids, cont);
    t.is(ll.expert, best);
    t.is(ll.logprob, want.logprob);
    t.is(ll.isGreedy, want.isGreedy);
  }
  t.true(chosen.size >= 2, `the sequences should not all go to one expert (chosen: ${[...chosen].join(', ')})`);

  const prompt = tok.encode(TEXTS[2]!);
  const best = (await router.route(prompt)).expert;
  t.deepEqual(await router.generate(prompt, { maxNewTokens: 6 }), await direct[best]!.generate(prompt, { maxNewTokens: 6 }));
  t.is(router.counts.reduce((a, b) => a + b, 0), TEXTS.length + 1);
});

test('experts with different vocabularies and too-short inputs are refused with one clear error', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const a = await goldenCopy(dir, 'llama-tiny', 'a');
  const b = path.join(dir, 'b');
  await writeSyntheticModel(b, { family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 1, vocabSize: 96, numHeads: 4, numKvHeads: 2, seed: 1 });
  const err = await t.throwsAsync(PerplexityRouter.load([a, b]));
  t.like(err, { code: 'incompatible_models', path: b });
  t.regex(err!.message, /vocab_size 96 differs from the first expert's 128/);
  const router = await PerplexityRouter.load([a]);
  t.teardown(() => router.dispose());
  t.like(await t.throwsAsync(router.route([1])), { code: 'invalid_argument' });
});

test('as the harness\'s Scorer: each request is answered by the expert with the lowest perplexity on its context', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const folders = [base];
  for (let i = 0; i < 2; i++) {
    const f = path.join(dir, `e${i}`);
    await writeSyntheticModel(f, {
      family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 1,
      perturb: { from: base, scale: 0.05, seed: 40 + i },
    });
    folders.push(f);
  }
  const tok = await Tokenizer.fromFolder(base);
  const load = async () => Promise.all(folders.map(async (f) => new CausalLMScorer(await CausalLM.load(f), tok)));
  const direct = await load();
  t.teardown(() => direct.forEach((s) => s.dispose()));
  const router: Scorer = new PerplexityRouterScorer(await load());
  t.teardown(() => router.dispose());
  t.like(router.info, { modelType: 'perplexity_router', numExperts: 3, expertsPerToken: 1 });

  // Expected routes, from each expert's own rolling log-likelihood of the context.
  const best: number[] = [];
  for (const text of TEXTS) {
    const ppl: number[] = [];
    for (const s of direct) {
      const [r] = await s.logLikelihoodRolling([text]);
      ppl.push(Math.exp(-r!.logprob / r!.tokens));
    }
    best.push(ppl.indexOf(Math.min(...ppl)));
  }
  t.true(new Set(best).size >= 2, `routes ${best.join(', ')}`);

  const rolling = await router.logLikelihoodRolling(TEXTS);
  // Batches differ (the router batches each expert's share), so float sums differ in the last bits.
  for (const [i, text] of TEXTS.entries()) {
    const want = (await direct[best[i]!]!.logLikelihoodRolling([text]))[0]!;
    t.is(rolling[i]!.tokens, want.tokens);
    t.true(Math.abs(rolling[i]!.logprob - want.logprob) < 1e-4, `"${text}": ${rolling[i]!.logprob} vs ${want.logprob}`);
  }

  const requests = TEXTS.map((context) => ({ context, continuation: ' ok' }));
  const scored = await router.logLikelihood(requests);
  for (const [i, r] of requests.entries()) {
    const want = (await direct[best[i]!]!.logLikelihood([r]))[0]!;
    t.true(Math.abs(scored[i]!.logprob - want.logprob) < 1e-4 && scored[i]!.isGreedy === want.isGreedy, `"${r.context}": ${scored[i]!.logprob} vs ${want.logprob}`);
  }
  const gen = { context: TEXTS[2]!, until: ['\n'], maxNewTokens: 5, temperature: 0, topP: 1, seed: 0 };
  t.deepEqual(await router.generate([gen]), await direct[best[2]!]!.generate([gen]));
  t.is(router.takeRouting(), null);
});
