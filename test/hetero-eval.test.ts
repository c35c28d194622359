// The heterogeneous MoE under the evaluation harness's Scorer interface: with one
// expert it scores exactly as CausalLMScorer scores that expert (same text handling);
// with several, a multiple-choice question is routed on its context only.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CausalLMScorer, type Scorer } from '../benchmarks/eval/scorer.js';
import { loadHeteroExperts } from '../core/hetero/load.js';
import { HeteroScorer, loadHeteroScorer } from '../core/hetero/scorer.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { writeHeteroRepo } from '../export/formats/hetero/write.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
let llama = '';
let narrow = '';

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-eval-'));
  llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  narrow = await narrowQwen2(dir);
});
test.after.always(() => cleanup());

const requests = [
  { context: 'Question: what is 2+2?\nAnswer:', continuation: ' 4' },
  { context: 'Question: what is 2+2?\nAnswer:', continuation: ' five' },
  { context: 'the cat ', continuation: 'sat on the mat' },
];

test('one expert: the Scorer gives what CausalLMScorer gives for that expert (loglikelihood, rolling, greedy generation)', async (t) => {
  const tokenizer = await Tokenizer.fromFolder(llama);
  const hetero: Scorer = new HeteroScorer(await loadHeteroExperts([llama], ['llama'], { kind: 'uniform', topK: 1, temperature: 1 }), tokenizer);
  const dense = new CausalLMScorer(await CausalLM.load(llama), tokenizer);
  t.teardown(() => {
    hetero.dispose();
    dense.dispose();
  });
  const a = await hetero.logLikelihood(requests);
  const b = await dense.logLikelihood(requests);
  a.forEach((r, i) => {
    t.true(Math.abs(r.logprob - b[i]!.logprob) < 1e-4, `${r.logprob} vs ${b[i]!.logprob}`);
    t.is(r.isGreedy, b[i]!.isGreedy);
    t.is(r.tokens, b[i]!.tokens);
  });
  const ra = await hetero.logLikelihoodRolling(['hello world, a short text'], undefined);
  const rb = await dense.logLikelihoodRolling(['hello world, a short text'], undefined);
  t.true(Math.abs(ra[0]!.logprob - rb[0]!.logprob) < 1e-4);
  t.is(ra[0]!.tokens, rb[0]!.tokens);
  const g = { context: 'abc', until: ['\n'], maxNewTokens: 5, temperature: 0, topP: 1, seed: 0 };
  t.deepEqual(await hetero.generate([g]), await dense.generate([g]));
  t.deepEqual(hetero.info, { modelType: 'moeforge_hetero', architecture: 'MoeforgeHeteroForCausalLM', numExperts: 1, expertsPerToken: 1 });
});

test('an exported repo loads as a Scorer; the choices of one question share one route (routed on the context)', async (t) => {
  const out = path.join(dir, 'repo');
  await writeHeteroRepo(out, {
    experts: [llama, narrow].map((folder, i) => ({ name: `e${i}`, ref: folder, folder })),
    router: { kind: 'perplexity', topK: 1, temperature: 1 },
    tokenizerFolder: llama,
  });
  const scorer = await loadHeteroScorer(out);
  t.teardown(() => scorer.dispose());
  const counts = scorer.model.counts;
  await scorer.logLikelihood(requests.slice(0, 2));
  t.is(counts[0]! + counts[1]!, 2);
  t.true(counts[0] === 2 || counts[1] === 2, `both choices go to one expert: ${counts.join(', ')}`);
  // The route is the expert with the higher mean log-likelihood of the context.
  const ctx = (scorer.tokenizer as Tokenizer).encode(requests[0]!.context, { addSpecialTokens: true });
  const scores = await scorer.model.scores(ctx);
  t.is(counts[scores[0]! >= scores[1]! ? 0 : 1], 2);
});

test('moeforge eval scores an exported heterogeneous repo beside its experts', async (t) => {
  const fixtures = path.join(REPO_ROOT, 'test', 'fixtures', 'eval');
  const out = path.join(dir, 'repo-eval');
  await writeHeteroRepo(out, {
    experts: [llama, narrow].map((folder, i) => ({ name: `e${i}`, ref: folder, folder })),
    router: { kind: 'perplexity', topK: 2, temperature: 1 },
    tokenizerFolder: llama,
  });
  const suite = path.join(dir, 'suite.yml');
  await writeFile(suite, ['name: hetero', 'seed: 1', 'tasks:', '  - name: arc', '    builtin: arc', `    data: ${JSON.stringify(path.join(fixtures, 'arc.jsonl'))}`, '    limit: 3', ''].join('\n'));
  const report = path.join(dir, 'eval-out');
  const r = await runCli(['eval', out, llama, '--suite', suite, '--out', report]);
  t.is(r.code, 0, r.stderr);
  const results = JSON.parse(await readFile(path.join(report, 'results.json'), 'utf8')) as {
    models: { name: string; status: string }[];
    results: Record<string, Record<string, { n: number; metrics: Record<string, { value: number }> }>>;
  };
  t.deepEqual(results.models.map((m) => [m.name, m.status]), [['repo-eval', 'ok'], ['llama', 'ok']]);
  const acc = results.results['arc']!['repo-eval']!;
  t.is(acc.n, 3);
  t.true(Object.values(acc.metrics).every((m) => m.value >= 0 && m.value <= 1));
});
