// Routing statistics for MoE models: per sparse layer (mlp_only_layers skipped),
// the share of tokens whose top-k experts (k from the config) include each expert,
// equal to a hand count over the engine's router logits.
import test from 'ava';
import { CausalLMScorer } from '../benchmarks/eval/scorer.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { charModel } from './fixtures/eval/models.js';
import { tempDir } from './helpers/paths.js';

test('top-k routing counts over scored tokens equal a hand count from router logits (qwen2-moe, a dense layer in between)', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-eval-routing-');
  t.teardown(cleanup);
  const folder = await charModel(dir, 'qwen2moe-tiny-mixed');
  const model = await CausalLM.load(folder);
  t.teardown(() => model.dispose());
  const tokenizer = await Tokenizer.fromFolder(folder);
  const scorer = new CausalLMScorer(model, tokenizer, 4);
  // two requests of different lengths: a padded batch, whose padding must not count
  await scorer.logLikelihood([
    { context: 'The cat', continuation: ' sat' },
    { context: 'A much longer context here', continuation: ' ok' },
  ]);
  const routing = scorer.takeRouting()!;
  t.deepEqual(routing.layers, [0, 2]); // mlp_only_layers [1]
  t.is(routing.expertsPerToken, 2);
  // by hand: unpadded forwards over (context + continuation)[:-1]
  const texts = ['The cat sa', 'A much longer context here o'];
  const counts = [0, 2].map(() => [0, 0, 0, 0]);
  let tokens = 0;
  for (const text of texts) {
    const ids = tokenizer.encode(text);
    tokens += ids.length;
    const out = await model.forward([ids], { outputRouterLogits: true });
    [0, 2].forEach((layer, li) => {
      const logits = out.routerLogits!.get(layer)!;
      for (let i = 0; i < ids.length; i++) {
        const row = Array.from(logits.subarray(i * 4, i * 4 + 4));
        const top = row.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 2);
        for (const [, e] of top) counts[li]![e]!++;
      }
    });
  }
  t.is(routing.tokens, tokens);
  t.deepEqual(routing.counts, counts);
  t.is(scorer.takeRouting()!.tokens, 0); // taking resets
});
