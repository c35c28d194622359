// The built-in MMLU / ARC / HellaSwag / GSM8K definitions on fixture files in the
// public column layouts (cais/mmlu, allenai/ai2_arc, Rowan/hellaswag, openai/gsm8k;
// GSM8K also as Parquet): the exact prompts, choices and golds lm-eval builds, and
// a run of all four through the harness on a tiny model (pipeline and metric
// arithmetic, not accuracy).
import test from 'ava';
import path from 'node:path';
import { loadSamples } from '../benchmarks/eval/data.js';
import { evaluate, localModel } from '../benchmarks/eval/evaluate.js';
import { buildContext } from '../benchmarks/eval/prompts.js';
import { validateSuite, type Suite } from '../benchmarks/eval/suite.js';
import { resolveTask } from '../benchmarks/eval/task.js';
import { hellaswagPreprocess, pyCapitalize } from '../benchmarks/eval/tasks/hellaswag.js';
import { charModel } from './fixtures/eval/models.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'eval');

const suite: Suite = validateSuite(
  {
    name: 'builtins',
    seed: 1,
    tasks: [
      { name: 'mmlu', builtin: 'mmlu', data: 'mmlu.jsonl' },
      { name: 'arc_easy', builtin: 'arc_easy', data: 'arc.jsonl' },
      { name: 'hellaswag', builtin: 'hellaswag', data: 'hellaswag.jsonl' },
      { name: 'gsm8k', builtin: 'gsm8k', data: 'gsm8k.jsonl', num_fewshot: 1, max_new_tokens: 8, limit: 2 },
      { name: 'gsm8k_0shot', builtin: 'gsm8k', data: 'gsm8k.jsonl', num_fewshot: 0, max_new_tokens: 8, limit: 2 },
      { name: 'gsm8k_parquet', builtin: 'gsm8k', data: 'gsm8k.parquet', num_fewshot: 0, max_new_tokens: 8, limit: 2 },
    ],
  },
  path.join(FIXTURES, 'suite.yml'),
);

test('MMLU: subject description, lettered choices, "Answer:", gold from the int answer', async (t) => {
  const task = resolveTask(suite, suite.tasks[0]!, 0);
  const rows = await loadSamples(task.dataFile);
  t.is(
    buildContext(task, rows[0]!, 0, { samples: rows, same: true }, 1),
    'The following are multiple choice questions (with answers) about elementary mathematics.\n\nWhat is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer:',
  );
  t.deepEqual(task.docs.choices!(rows[0]!, 0), ['A', 'B', 'C', 'D']);
  t.deepEqual(
    rows.map((r, i) => task.docs.target(r, i)),
    [1, 1, 2],
  );
  t.deepEqual(task.metrics, ['acc']);
});

test('ARC: "Question: …\\nAnswer:", answer texts as choices, gold = index of answerKey among letter or digit labels', async (t) => {
  const task = resolveTask(suite, suite.tasks[1]!, 1);
  const rows = await loadSamples(task.dataFile);
  t.is(task.docs.text(rows[1]!, 1), 'Question: Which tool is best to measure the mass of a rock?\nAnswer:');
  t.deepEqual(task.docs.choices!(rows[1]!, 1), ['a ruler', 'a balance', 'a thermometer']);
  t.deepEqual(
    rows.map((r, i) => task.docs.target(r, i)),
    [2, 1, 2],
  );
});

test('HellaSwag: lm-eval preprocessing of ctx_a, ctx_b.capitalize(), endings and the string label', async (t) => {
  const task = resolveTask(suite, suite.tasks[2]!, 2);
  const rows = await loadSamples(task.dataFile);
  t.is(task.docs.text(rows[0]!, 0), 'Roof shingle removal: A man is sitting on a roof. He');
  // " [title]" → ". ", other [markers] dropped, Python capitalize lower-cases the rest, double spaces collapsed
  t.is(task.docs.text(rows[2]!, 2), 'Home and Garden: How to water a plant. Check the soil. If it is dry');
  // strip() comes before the markers are removed, so a leading marker leaves its space (as lm-eval does)
  t.deepEqual(task.docs.choices!(rows[2]!, 2), [' water it slowly.', 'paint the pot.', ' sing to it.', 'throw it away.']);
  t.deepEqual(
    rows.map((r, i) => task.docs.target(r, i)),
    [3, 3, 0],
  );
  t.is(pyCapitalize('IF it is DRY'), 'If it is dry');
  t.is(hellaswagPreprocess(' a [title] b  c '), 'a. b c');
});

test('GSM8K: prompt, one seeded few-shot example from the other rows, lm-eval generation settings; Parquet reads as JSONL', async (t) => {
  const task = resolveTask(suite, suite.tasks[3]!, 3);
  const rows = await loadSamples(task.dataFile);
  t.deepEqual(await loadSamples(path.join(FIXTURES, 'gsm8k.parquet')), rows);
  const context = buildContext(task, rows[0]!, 0, { samples: rows, same: true }, 1);
  const parts = context.split('\n\n');
  t.is(parts.length, 2);
  t.is(parts[1], 'Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:');
  // the shot is another row, written as text + " " + its full answer
  const shot = rows.slice(1).find((r) => parts[0] === `Question: ${String(r.question)}\nAnswer: ${String(r.answer)}`);
  t.truthy(shot, parts[0]);
  t.deepEqual(task.stop, ['Question:', '</s>', '<|im_end|>']);
  t.is(task.regex, '#### (\\-?[0-9\\.\\,]+)');
  t.is(task.numFewshot, 1);
});

test.serial('all four built-ins run through the harness on a tiny model; metrics are the means of their samples', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-eval-builtins-');
  t.teardown(cleanup);
  const folder = await charModel(dir, 'llama-tiny');
  const results = await evaluate(suite, [localModel(folder, folder)]);
  const r = results.results;
  const sizes = { mmlu: 3, arc_easy: 3, hellaswag: 3, gsm8k: 2, gsm8k_0shot: 2, gsm8k_parquet: 2 };
  for (const [task, n] of Object.entries(sizes)) {
    const entry = r[task]!['llama-tiny']!;
    if ('error' in entry) return t.fail(entry.error);
    t.is(entry.n, n, task);
    const samples = results.samples![task]!['llama-tiny']!;
    for (const [metric, v] of Object.entries(entry.metrics)) {
      const per = samples.map((s) =>
        metric === 'exact_match' ? (s.exact_match as number) : metric === 'acc' ? Number(s.pred === s.gold) : Number(s.pred_norm === s.gold),
      );
      const mean = per.reduce((a, b) => a + b, 0) / per.length;
      t.true(Math.abs(v.value - mean) < 1e-9, `${task} ${metric}`);
    }
  }
  // MMLU scores the four letters, HellaSwag four endings, ARC as many texts as the row has
  const mmlu = results.samples!.mmlu!['llama-tiny']!;
  t.true(mmlu.every((s) => (s.loglikelihoods as number[]).length === 4));
  t.deepEqual(
    results.samples!.arc_easy!['llama-tiny']!.map((s) => (s.loglikelihoods as number[]).length),
    [4, 3, 4],
  );
  // GSM8K: the same samples from JSONL and Parquet give the same outputs
  t.deepEqual(results.samples!.gsm8k_0shot!['llama-tiny'], results.samples!.gsm8k_parquet!['llama-tiny']);
  t.true(results.samples!.gsm8k!['llama-tiny']!.every((s) => typeof s.reference === 'string' && (s.reference as string).includes('####')));
});
