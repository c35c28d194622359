// Suites and task data that are wrong: each gives one MoeforgeError whose line
// names the file, the YAML path or the task and column, before any model loads.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadSamples } from '../benchmarks/eval/data.js';
import { prepareTasks } from '../benchmarks/eval/evaluate.js';
import { loadSuite, validateSuite } from '../benchmarks/eval/suite.js';
import { templateVariables } from '../benchmarks/eval/template.js';
import { MoeforgeError } from '../core/errors.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'eval');
const SUITE = path.join(FIXTURES, 'suite.yml');

function lineOf(t: { throws: (fn: () => unknown, e: object) => unknown }, fn: () => unknown): string {
  const e = t.throws(fn, { instanceOf: MoeforgeError }) as MoeforgeError;
  return e.toLine();
}

test('the documented example shape validates, with defaults filled in', (t) => {
  const s = validateSuite(
    {
      name: 'zoo',
      seed: 0,
      tasks: [
        { name: 'addition', type: 'generate', data: 'addition.test.jsonl', prompt: '{{ question }}', target: '{{ answer }}', max_new_tokens: 8, stop: ['\n'], metrics: ['exact_match'] },
        { name: 'arc', type: 'multiple_choice', builtin: 'arc', data: 'arc.jsonl' },
      ],
    },
    SUITE,
  );
  t.is(s.tasks.length, 2);
  t.is(s.seed, 0);
  t.is(s.file, SUITE);
});

test('schema errors name the YAML path and what was expected', (t) => {
  const base = { name: 'x', type: 'generate', data: 'a.jsonl', prompt: '{{ q }}', target: '{{ a }}' };
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ ...base, promt: 'x' }] }, 'suite.yml')), /^error\[invalid_data\]: suite\.yml: tasks\[0\]\.promt: unknown key; expected one of name, type/);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ ...base, max_new_tokens: 'many' }] }, 'suite.yml')), /suite\.yml: tasks\[0\]\.max_new_tokens: .*expected number.*got "many"/);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ ...base, type: 'classify' }] }, 'suite.yml')), /tasks\[0\]\.type: /);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ name: 'x', data: 'a.jsonl', prompt: 'p' }] }, 'suite.yml')), /tasks\[0\]\.type: required: expected one of multiple_choice, generate, perplexity/);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ ...base, type: 'multiple_choice', target: '0' }] }, 'suite.yml')), /tasks\[0\]\.choices: required for multiple_choice/);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ ...base, metrics: ['acc'] }] }, 'suite.yml')), /tasks\[0\]\.metrics: metric acc does not apply to generate tasks/);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [base, base] }, 'suite.yml')), /tasks\[1\]\.name: task name "x" is used twice/);
  t.regex(lineOf(t, () => validateSuite({ name: 's', tasks: [{ ...base, regex: '(unclosed' }] }, 'suite.yml')), /tasks\[0\]\.regex: not a valid regular expression/);
  t.regex(lineOf(t, () => validateSuite({ tasks: [base] }, 'suite.yml')), /suite\.yml: name: required/);
});

test('a suite file: YAML errors and a missing file are one line naming it', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-eval-suite-');
  t.teardown(cleanup);
  const file = path.join(dir, 'bad.yml');
  await writeFile(file, 'name: s\nname: t\ntasks: []\n');
  const dup = await t.throwsAsync(loadSuite(file), { instanceOf: MoeforgeError });
  t.regex(dup!.toLine(), /^error\[invalid_data\]: .*bad\.yml: duplicate key 'name'/);
  const missing = await t.throwsAsync(loadSuite(path.join(dir, 'nope.yml')), { instanceOf: MoeforgeError });
  t.is(missing!.code, 'missing_file');
  t.regex(missing!.toLine(), /nope\.yml: cannot read the suite: no such file or directory/);
});

test('a template reading a column the data lacks: one line naming task, column and file', async (t) => {
  const suite = validateSuite({ name: 's', tasks: [{ name: 'arc_custom', type: 'generate', data: 'arc.jsonl', prompt: 'Q: {{ question }} {{ passage }}', target: '{{ answerKey }}' }] }, SUITE);
  const e = await t.throwsAsync(prepareTasks(suite), { instanceOf: MoeforgeError });
  t.is(e!.code, 'invalid_data');
  t.regex(e!.toLine(), /arc\.jsonl: task arc_custom reads column "passage", which row 1 does not have \(columns: id, question, choices, answerKey\)$/);
  t.false(e!.toLine().includes('\n'));
});

test('a built-in over a file in another layout names the missing public column', async (t) => {
  const suite = validateSuite({ name: 's', tasks: [{ name: 'hs', builtin: 'hellaswag', data: 'arc.jsonl' }] }, SUITE);
  const e = await t.throwsAsync(prepareTasks(suite), { instanceOf: MoeforgeError });
  t.regex(e!.toLine(), /arc\.jsonl: task hs reads column "activity_label"/);
});

test('an empty data file, a missing one, bad JSONL and Hub datasets: one line each', async (t) => {
  const empty = await t.throwsAsync(prepareTasks(validateSuite({ name: 's', tasks: [{ name: 'e', builtin: 'arc', data: 'empty.jsonl' }] }, SUITE)), { instanceOf: MoeforgeError });
  t.regex(empty!.toLine(), /^error\[invalid_data\]: .*empty\.jsonl: the data file holds no samples$/);
  const missing = await t.throwsAsync(loadSamples(path.join(FIXTURES, 'none.jsonl')), { instanceOf: MoeforgeError });
  t.regex(missing!.toLine(), /^error\[missing_file\]: .*none\.jsonl: cannot read the data file: no such file or directory$/);
  const { dir, cleanup } = await tempDir('moeforge-eval-data-');
  t.teardown(cleanup);
  await writeFile(path.join(dir, 'bad.jsonl'), '{"a": 1}\n{"a": \n');
  const bad = await t.throwsAsync(loadSamples(path.join(dir, 'bad.jsonl')), { instanceOf: MoeforgeError });
  t.regex(bad!.toLine(), /bad\.jsonl: line 2 is not valid JSON/);
  await writeFile(path.join(dir, 'bad.parquet'), 'PAR1 not really');
  const pq = await t.throwsAsync(loadSamples(path.join(dir, 'bad.parquet')), { instanceOf: MoeforgeError });
  t.regex(pq!.toLine(), /bad\.parquet: not a readable Parquet file/);
  const hub = await t.throwsAsync(loadSamples('hf://datasets/cais/mmlu'), { instanceOf: MoeforgeError });
  t.regex(hub!.toLine(), /^error\[unsupported_format\]: hf:\/\/datasets\/cais\/mmlu: Hub datasets are not supported yet/);
});

test('few-shot: a pool smaller than num_fewshot is refused; a gold outside the choices names the row', async (t) => {
  const fewshot = validateSuite({ name: 's', tasks: [{ name: 'g', builtin: 'gsm8k', data: 'gsm8k.jsonl' }] }, SUITE); // 5-shot by default, 3 other rows
  const [prepared] = await prepareTasks(fewshot);
  const { buildContext } = await import('../benchmarks/eval/prompts.js');
  const e = t.throws(() => buildContext(prepared!.task, prepared!.samples[0]!, 0, prepared!.pool, 0), { instanceOf: MoeforgeError });
  t.regex(e!.toLine(), /task g asks for 5 few-shot examples but its pool has 3/);
  const mc = validateSuite({ name: 's', tasks: [{ name: 'm', type: 'multiple_choice', data: 'mmlu.jsonl', prompt: '{{ question }}', choices: '{{ choices }}', target: 'Lyon' }] }, SUITE);
  const bad = await t.throwsAsync(prepareTasks(mc), { instanceOf: MoeforgeError });
  t.regex(bad!.toLine(), /mmlu\.jsonl: task m: suite\.yml: tasks\[0\]\.target: row 1: target "Lyon" is neither a choice index \(0\.\.3\) nor one of the choices$/);
});

test('template variables: the columns a Jinja template reads', (t) => {
  t.deepEqual(templateVariables('{{ question.strip() }}\n{% for c in choices %}{{ loop.index }}. {{ c | upper }}{% endfor %}{% set x = subject %}{{ x }}'), ['question', 'choices', 'subject']);
});

test('a malformed row in the public layout fails before scoring, naming task, file and row', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-eval-rows-');
  t.teardown(cleanup);
  await writeFile(
    path.join(dir, 'arc.jsonl'),
    `${JSON.stringify({ id: 'a', question: 'q?', choices: { text: ['x', 'y'], label: ['A', 'B'] }, answerKey: 'A' })}\n${JSON.stringify({ id: 'b', question: 'q?', choices: { text: ['x', 'y'], label: ['A', 'B'] }, answerKey: 'E' })}\n`,
  );
  const suite = validateSuite({ name: 's', tasks: [{ name: 'arc', builtin: 'arc', data: 'arc.jsonl' }] }, path.join(dir, 'suite.yml'));
  const e = await t.throwsAsync(prepareTasks(suite), { instanceOf: MoeforgeError });
  t.regex(e!.toLine(), /^error\[invalid_data\]: .*arc\.jsonl: task arc: row 2: answerKey "E" is not one of the labels A, B$/);
});

test('few-shot examples from fewshot_data: drawn with the seed, written as text + delimiter + target', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-eval-shots-');
  t.teardown(cleanup);
  await writeFile(path.join(dir, 'test.jsonl'), '{"q": "1+1", "a": "2"}\n');
  await writeFile(path.join(dir, 'train.jsonl'), '{"q": "2+2", "a": "4"}\n{"q": "3+3", "a": "6"}\n');
  const suite = validateSuite(
    { name: 's', tasks: [{ name: 'add', type: 'generate', data: 'test.jsonl', fewshot_data: 'train.jsonl', num_fewshot: 2, prompt: 'Q: {{ q }}\nA:', target: '{{ a }}', fewshot_delimiter: '\n---\n' }] },
    path.join(dir, 'suite.yml'),
  );
  const [p] = await prepareTasks(suite);
  t.false(p!.pool.same);
  const { buildContext } = await import('../benchmarks/eval/prompts.js');
  const context = buildContext(p!.task, p!.samples[0]!, 0, p!.pool, 0);
  const shots = context.split('\n---\n');
  t.is(shots.length, 3);
  t.deepEqual(shots.slice(0, 2).sort(), ['Q: 2+2\nA: 4', 'Q: 3+3\nA: 6']);
  t.is(shots[2], 'Q: 1+1\nA:');
  t.is(buildContext(p!.task, p!.samples[0]!, 0, p!.pool, 0), context); // same seed, same draw
});
