// `moeforge eval` as a user runs it: several models side by side, one that cannot
// load (one line, exit 2, the others still reported), results.json / report.md /
// SVG contents, byte-identical reruns for a seed, bad suites, and the multiple-
// choice pick checked against `moeforge score` log-probabilities.
import test from 'ava';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { VERSION } from '../core/version.js';
import { runCli } from './helpers/cli.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';
import { charModel } from './fixtures/eval/models.js';
import { findAll, parseXml } from './fixtures/eval/xml.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'eval');
let dir = '';
let llama = '';
let mixtral = '';
let cleanup: () => Promise<void> = async () => {};

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-eval-cli-'));
  llama = await charModel(dir, 'llama-tiny');
  mixtral = await charModel(dir, 'mixtral-tiny');
  await writeFile(
    path.join(dir, 'suite.yml'),
    [
      'name: cli',
      'seed: 7',
      'tasks:',
      '  - name: arc',
      '    builtin: arc',
      `    data: ${JSON.stringify(path.join(FIXTURES, 'arc.jsonl'))}`,
      '    limit: 2',
      '  - name: sampled',
      '    type: generate',
      `    data: ${JSON.stringify(path.join(FIXTURES, 'gsm8k.jsonl'))}`,
      '    prompt: "Q: {{ question }}\\nA:"',
      '    target: "{{ answer }}"',
      '    regex: "#### (\\\\d+)"',
      '    max_new_tokens: 4',
      '    temperature: 0.9',
      '    limit: 2',
      '  - name: ppl',
      '    type: perplexity',
      `    data: ${JSON.stringify(path.join(FIXTURES, 'mmlu.jsonl'))}`,
      '    prompt: "{{ question }}"',
      '',
    ].join('\n'),
  );
});
test.after.always(() => cleanup());

interface Results {
  moeforge_version: string;
  seed: number;
  suite: { tasks: { name: string; metrics: string[]; temperature?: number }[] };
  models: { name: string; status: string; error: string | null; num_experts: number | null }[];
  results: Record<string, Record<string, { n: number; metrics: Record<string, { value: number; stderr: number | null }> } | { error: string }>>;
  routing: Record<string, Record<string, { layers: number[]; fractions: number[][]; experts_per_token: number; tokens: number }>>;
}

test.serial('several models side by side; a model that cannot load is one line, exit 2, the others are reported', async (t) => {
  const out = path.join(dir, 'report');
  const missing = path.join(dir, 'no-such-model');
  const r = await runCli(['eval', llama, missing, mixtral, '--suite', path.join(dir, 'suite.yml'), '--out', out, '--batch-size', '3']);
  t.is(r.code, 2, r.stderr);
  const errLines = r.stderr.trim().split('\n');
  t.is(errLines.length, 1, r.stderr);
  t.regex(errLines[0]!, /^error\[missing_file\]: .*no-such-model: /);
  // the table: one column per model, values for the two that loaded
  const header = r.stdout.split('\n')[0]!;
  t.regex(header, /task\s+metric\s+n\s+llama-tiny\s+no-such-model\s+mixtral-tiny/);
  const arcRow = r.stdout.split('\n').find((l) => l.startsWith('arc ') && l.includes('acc_norm'))!;
  t.regex(arcRow, /\d\.\d{4} ± \d\.\d{4}\s+failed\s+\d\.\d{4} ± \d\.\d{4}$/);
  t.regex(r.stdout, /report: .*report\.md/);

  const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as Results;
  t.is(results.moeforge_version, VERSION);
  t.is(results.seed, 7);
  t.deepEqual(
    results.models.map((m) => [m.name, m.status]),
    [
      ['llama-tiny', 'ok'],
      ['no-such-model', 'error'],
      ['mixtral-tiny', 'ok'],
    ],
  );
  t.is(results.models[1]!.error, errLines[0]);
  t.is(results.models[2]!.num_experts, 4);
  t.deepEqual(
    results.suite.tasks.map((x) => x.name),
    ['arc', 'sampled', 'ppl'],
  );
  t.is(results.suite.tasks[1]!.temperature, 0.9);
  for (const model of ['llama-tiny', 'mixtral-tiny']) {
    const arc = results.results.arc![model]!;
    if ('error' in arc) return t.fail(arc.error);
    t.is(arc.n, 2);
    t.deepEqual(Object.keys(arc.metrics), ['acc', 'acc_norm']);
    const ppl = results.results.ppl![model]!;
    if ('error' in ppl) return t.fail(ppl.error);
    t.is(ppl.n, 3);
    t.true(ppl.metrics.token_perplexity!.value > 1 && ppl.metrics.token_perplexity!.stderr! > 0);
  }
  t.false('no-such-model' in results.results.arc!);
  // routing: only the MoE; per layer the top-2 fractions sum to 2
  t.deepEqual(Object.keys(results.routing.arc!), ['mixtral-tiny']);
  const routing = results.routing.arc!['mixtral-tiny']!;
  t.deepEqual(routing.layers, [0, 1]);
  for (const row of routing.fractions) t.true(Math.abs(row.reduce((a, b) => a + b, 0) - 2) < 1e-6);

  // report.md: the models, the table row, the error line, the charts
  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  t.true(md.includes('| task | metric | llama-tiny | no-such-model | mixtral-tiny |'));
  t.true(md.includes(`- no-such-model: \`${errLines[0]}\``));
  t.true(md.includes('![accuracy per task per model](accuracy.svg)'));
  t.true(md.includes('(routing/mixtral-tiny--arc.svg)'));

  // accuracy.svg: valid XML; one bar per model with results per accuracy task (arc, sampled)
  const svg = parseXml(await readFile(path.join(out, 'accuracy.svg'), 'utf8'));
  t.is(svg.name, 'svg');
  const bars = findAll(svg, (e) => e.name === 'rect' && e.attributes.class === 'bar');
  t.deepEqual(bars.map((b) => `${b.attributes['data-task']}/${b.attributes['data-model']}`).sort(), [
    'arc/llama-tiny',
    'arc/mixtral-tiny',
    'sampled/llama-tiny',
    'sampled/mixtral-tiny',
  ]);
  const arcLlama = results.results.arc!['llama-tiny'] as { metrics: Record<string, { value: number }> };
  t.is(Number(bars.find((b) => b.attributes['data-task'] === 'arc' && b.attributes['data-model'] === 'llama-tiny')!.attributes['data-value']), arcLlama.metrics.acc!.value);
  // routing heatmaps: layers × experts cells
  const heat = parseXml(await readFile(path.join(out, 'routing', 'mixtral-tiny--ppl.svg'), 'utf8'));
  t.is(findAll(heat, (e) => e.name === 'rect' && e.attributes.class === 'cell').length, 2 * 4);
  t.deepEqual((await readdir(path.join(out, 'samples', 'arc'))).sort(), ['llama-tiny.jsonl', 'mixtral-tiny.jsonl']);

  // the same command again: byte-identical results.json (seeded sampling, no timestamps)
  const out2 = path.join(dir, 'report2');
  const again = await runCli(['eval', llama, missing, mixtral, '--suite', path.join(dir, 'suite.yml'), '--out', out2, '--batch-size', '3']);
  t.is(again.code, 2);
  t.is(await readFile(path.join(out2, 'results.json'), 'utf8'), await readFile(path.join(out, 'results.json'), 'utf8'));
  t.is(await readFile(path.join(out2, 'samples', 'sampled', 'llama-tiny.jsonl'), 'utf8'), await readFile(path.join(out, 'samples', 'sampled', 'llama-tiny.jsonl'), 'utf8'));
});

test.serial('bad suites: a missing column and an empty data file are one line each, exit 2, before any model loads', async (t) => {
  const missingColumn = path.join(dir, 'missing-column.yml');
  await writeFile(missingColumn, `name: bad\ntasks:\n  - name: qa\n    type: generate\n    data: ${JSON.stringify(path.join(FIXTURES, 'gsm8k.jsonl'))}\n    prompt: "{{ query }}"\n    target: "{{ answer }}"\n`);
  const a = await runCli(['eval', llama, '--suite', missingColumn]);
  t.is(a.code, 2);
  t.is(a.stdout, '');
  t.regex(a.stderr, /^error\[invalid_data\]: .*gsm8k\.jsonl: task qa reads column "query", which row 1 does not have \(columns: question, answer\)\n$/);
  const empty = path.join(dir, 'empty.yml');
  await writeFile(empty, `name: bad\ntasks:\n  - name: e\n    builtin: mmlu\n    data: ${JSON.stringify(path.join(FIXTURES, 'empty.jsonl'))}\n`);
  const b = await runCli(['eval', llama, '--suite', empty]);
  t.is(b.code, 2);
  t.regex(b.stderr, /^error\[invalid_data\]: .*empty\.jsonl: the data file holds no samples\n$/);
  const c = await runCli(['eval', llama, '--suite', path.join(dir, 'suite.yml'), '--limit', '0']);
  t.is(c.code, 2);
  t.is(c.stderr, "error[invalid_argument]: --limit: expected an integer ≥ 1, got '0'\n");
});

test.serial('the multiple-choice pick equals a hand computation from `moeforge score` log-probabilities', async (t) => {
  const rows = [
    { q: 'Red plus blue', options: ['purple', 'a rather long answer'], gold: 0 },
    { q: 'Ice is', options: ['cold', 'hot'], gold: 1 },
  ];
  await writeFile(path.join(dir, 'mc.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
  const suite = path.join(dir, 'mc.yml');
  await writeFile(suite, 'name: mc\ntasks:\n  - name: mc\n    type: multiple_choice\n    data: mc.jsonl\n    prompt: "{{ q }}:"\n    choices: "{{ options }}"\n    target: "{{ gold }}"\n');
  const out = path.join(dir, 'mc-report');
  const r = await runCli(['eval', llama, '--suite', suite, '--out', out]);
  t.is(r.code, 0, r.stderr);
  const samples = (await readFile(path.join(out, 'samples', 'mc', 'llama-tiny.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { loglikelihoods: number[]; pred: number; pred_norm: number });
  let correct = 0;
  let correctNorm = 0;
  for (const [i, row] of rows.entries()) {
    const lls: number[] = [];
    for (const option of row.options) {
      // score prints log p(token | previous) for every token after BOS; the continuation
      // " option" is the last option.length + 1 characters (one token each).
      const s = await runCli(['score', llama, '--text', `${row.q}: ${option}`, '--json']);
      t.is(s.code, 0, s.stderr);
      const tokens = (JSON.parse(s.stdout) as { tokens: { logprob: number }[] }).tokens;
      lls.push(tokens.slice(-(option.length + 1)).reduce((a, x) => a + x.logprob, 0));
    }
    lls.forEach((ll, k) => t.true(Math.abs(ll - samples[i]!.loglikelihoods[k]!) < 1e-4, `${ll} vs ${samples[i]!.loglikelihoods[k]}`));
    const pick = lls[0]! >= lls[1]! ? 0 : 1;
    const pickNorm = lls[0]! / row.options[0]!.length >= lls[1]! / row.options[1]!.length ? 0 : 1;
    t.is(samples[i]!.pred, pick);
    t.is(samples[i]!.pred_norm, pickNorm);
    correct += Number(pick === row.gold);
    correctNorm += Number(pickNorm === row.gold);
  }
  const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as Results;
  const m = (results.results.mc!['llama-tiny'] as { metrics: Record<string, { value: number }> }).metrics;
  t.is(m.acc!.value, correct / 2);
  t.is(m.acc_norm!.value, correctNorm / 2);
});
