// Issue 11's check on the zoo: the same suite scored on the built-in engine directly
// and through `moeforge serve` (an in-process server on 127.0.0.1) agrees — greedy
// generations exactly, log-likelihoods within 1e-4.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { compareServed } from '../benchmarks/eval/remote/compare-served.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const ZOO = path.join(REPO_ROOT, 'benchmarks', 'zoo', 'models');

test('zoo expert: direct and served scores agree (generation exact, log-likelihoods within 1e-4)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const data = path.join(ZOO, 'data', 'caesar.test.jsonl');
  const suite = path.join(dir, 'suite.yml');
  await writeFile(
    suite,
    [
      'name: zoo-served',
      'seed: 0',
      'tasks:',
      '  - name: caesar',
      '    type: generate',
      `    data: ${data}`,
      '    prompt: "{{ question }}"',
      '    target: "{{ answer }}"',
      '    max_new_tokens: 6',
      '    stop: ["\\n"]',
      '    metrics: [exact_match]',
      '  - name: caesar_choice',
      '    type: multiple_choice',
      `    data: ${data}`,
      '    prompt: "{{ question }}"',
      '    choices: ["{{ answer }}", "{{ question[4:9] }}"]',
      '    target: "0"',
      '  - name: caesar_perplexity',
      '    type: perplexity',
      `    data: ${data}`,
      '    prompt: "{{ question }}{{ answer }}"',
      '',
    ].join('\n'),
  );
  const r = await compareServed(path.join(ZOO, 'caesar'), suite, 12);
  t.log(`max |direct - served| over per-sample numbers: ${r.maxAbsDiff}`, JSON.stringify(r.metrics));
  t.is(r.generations, 12);
  t.is(r.differing, 0);
  t.true(r.maxAbsDiff <= 1e-4, `max difference ${r.maxAbsDiff}`);
  t.deepEqual(r.metrics.caesar!.served, r.metrics.caesar!.direct);
  t.is(r.metrics.caesar!.direct!.exact_match, 1);
  t.true(Object.keys(r.metrics.caesar_choice!.direct!).includes('acc'));
  t.true(Object.keys(r.metrics.caesar_perplexity!.direct!).length > 0);
});
