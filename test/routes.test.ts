// moeforge routes: on an MoE built from perturbed llama-tiny experts with hidden gates
// and on the golden mixtral-tiny. The table's numbers equal the JSON's, the JSON's
// top-1/top-k fractions equal counts recomputed here from the engine's router logits,
// the SVG is well-formed XML with one cell per group × expert × layer, condition numbers
// match closed forms; bad prompts files are one line and exit code 2.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { buildMoe, parseRecipeText } from '../core/build/build.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { conditionNumber, singularValues } from '../routers/diagnostics/condition.js';
import type { RoutesReport } from '../routers/diagnostics/routing-stats.js';
import { buildTestContainer, goldenCopy } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

const TOPICS = {
  code: ['def main print x', 'for i in range', 'import numpy as np'],
  math: ['12 + 35 = 47', '7 * 8 = 56', '100 / 4 = 25'],
  shout: ['THE QUICK BROWN FOX', 'HELLO THERE FRIEND', 'WHAT A LOVELY DAY'],
  symbols: ['[{(<>)}] ~~ ## @@', '!!! ??? ;;; :::', '%% $$ ^^ && **'],
};

/** A strict XML well-formedness check (no parser in the dependencies): balanced tags, quoted attributes, known entities. */
function parseXml(text: string): { root: string; elements: { name: string; attrs: Record<string, string> }[] } {
  const body = text.trim();
  const elements: { name: string; attrs: Record<string, string> }[] = [];
  const stack: string[] = [];
  let root = '';
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < body.length) {
    tag.lastIndex = pos;
    m = tag.exec(body);
    if (!m) throw new Error(`not well-formed at offset ${pos}: ${body.slice(pos, pos + 40)}`);
    pos = tag.lastIndex;
    if (m[5] !== undefined) {
      if (stack.length === 0 && m[5].trim()) throw new Error('text outside the root element');
      const bad = m[5].replace(/&(amp|lt|gt|quot|apos);/g, '');
      if (bad.includes('&')) throw new Error(`bad entity in ${m[5]}`);
      continue;
    }
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}>`);
      continue;
    }
    if (!root) root = name!;
    else if (stack.length === 0) throw new Error('two root elements');
    const attrs: Record<string, string> = {};
    for (const a of attrText!.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1]!] = a[2]!;
    }
    elements.push({ name: name!, attrs });
    if (!selfClose) stack.push(name!);
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

/** The table's data rows per layer: group → [tokens, top-1…, top-k…, entropy]. */
function parseTable(stdout: string): Map<number, Map<string, number[]>> {
  const out = new Map<number, Map<string, number[]>>();
  let current: Map<string, number[]> | undefined;
  for (const line of stdout.split('\n')) {
    const h = /^layer (\d+) /.exec(line);
    if (h) {
      current = new Map();
      out.set(Number(h[1]), current);
      continue;
    }
    if (!current || !line.includes('|') || line.startsWith('group')) continue;
    const parts = line.split(/\s+/).filter((p) => p && p !== '|');
    current.set(parts[0]!, parts.slice(1).map(Number));
  }
  return out;
}

test('condition numbers: orthonormal rows give 1, a 2×d gate matches its closed form, dependent rows give Infinity', (t) => {
  const d = 6;
  const eye = new Float32Array(3 * d);
  for (let i = 0; i < 3; i++) eye[i * d + i] = 1;
  t.true(Math.abs(conditionNumber(eye, 3, d) - 1) < 1e-12);
  // rows u = (1, 0, …), v = (cos θ, sin θ, …): σ² = 1 ± cos θ.
  const theta = 0.3;
  const w = new Float32Array(2 * d);
  w[0] = 1;
  w[d] = Math.cos(theta);
  w[d + 1] = Math.sin(theta);
  const c = Math.cos(Math.fround(theta));
  const want = Math.sqrt((1 + Math.abs(c)) / (1 - Math.abs(c)));
  t.true(Math.abs(conditionNumber(w, 2, d) / want - 1) < 1e-5, `${conditionNumber(w, 2, d)} vs ${want}`);
  const sv = singularValues(Float32Array.from([3, 0, 0, 0, 0, 4]), 2, 3);
  t.deepEqual(sv.map((x) => Math.round(x * 1e9) / 1e9), [4, 3]);
  t.is(conditionNumber(Float32Array.from([1, 2, 3, 2, 4, 6]), 2, 3), Infinity);
});

test('routes on a built MoE: table = JSON = counts from the router logits; SVG is valid; files written', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const experts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const folder = path.join(dir, `e${i}`);
    await writeSyntheticModel(folder, {
      family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 100 + i,
      perturb: { from: base, scale: 0.01, seed: 200 + i, roles: ['mlp_gate', 'mlp_up', 'mlp_down'] },
    });
    experts.push(folder);
  }
  const topics = Object.values(TOPICS);
  const recipe = `base_model: ${base}\ngate_mode: hidden\ndtype: float32\nexperts:\n${experts
    .map((e, i) => `  - source_model: ${e}\n    positive_prompts: ${JSON.stringify(topics[i])}`)
    .join('\n')}\n`;
  const container = buildTestContainer();
  const moe = path.join(dir, 'moe');
  await buildMoe(container, parseRecipeText(container, recipe, 'recipe.yml'), moe);

  const promptsFile = path.join(dir, 'prompts.yml');
  await writeFile(promptsFile, Object.entries(TOPICS).map(([g, ps]) => `${g}:\n${ps.map((p) => `  - ${JSON.stringify(p)}`).join('\n')}`).join('\n'));
  const outDir = path.join(dir, 'routes');
  const r = await runCli(['routes', moe, '--prompts', promptsFile, '--out', outDir]);
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(await readFile(path.join(outDir, 'routes.json'), 'utf8')) as RoutesReport;
  t.is(report.numExperts, 4);
  t.is(report.expertsPerToken, 2);
  t.deepEqual(report.layers.map((l) => l.layer), [0, 1, 2]);

  // The table's numbers are the JSON's, exactly.
  const table = parseTable(r.stdout);
  t.deepEqual([...table.keys()], [0, 1, 2]);
  report.layers.forEach((layer, li) => {
    for (const g of report.groups) {
      const s = g.layers[li]!;
      t.deepEqual(table.get(layer.layer)!.get(g.name), [g.tokens, ...s.top1, ...s.topk, s.entropy], `${g.name} layer ${layer.layer}`);
    }
  });

  // The JSON's fractions, recomputed independently from the router logits.
  const tok = await Tokenizer.fromFolder(moe);
  const model = await CausalLM.load(moe);
  t.teardown(() => model.dispose());
  for (const [gi, [name, prompts]] of Object.entries(TOPICS).entries()) {
    const g = report.groups[gi]!;
    t.is(g.name, name);
    const top1 = [0, 1, 2].map(() => [0, 0, 0, 0]);
    const topk = [0, 1, 2].map(() => [0, 0, 0, 0]);
    let tokens = 0;
    for (const p of prompts) {
      const ids = tok.encode(p);
      tokens += ids.length;
      const out = await model.forward([ids], { outputRouterLogits: true });
      for (let l = 0; l < 3; l++) {
        const logits = out.routerLogits!.get(l)!;
        for (let i = 0; i < ids.length; i++) {
          const row = Array.from(logits.slice(i * 4, i * 4 + 4));
          const order = [0, 1, 2, 3].sort((a, b) => row[b]! - row[a]! || a - b);
          top1[l]![order[0]!]!++;
          topk[l]![order[0]!]!++;
          topk[l]![order[1]!]!++;
        }
      }
    }
    t.is(g.tokens, tokens);
    for (let l = 0; l < 3; l++) {
      t.deepEqual(g.layers[l]!.top1, top1[l]!.map((c) => Math.round((c / tokens) * 1e4) / 1e4));
      t.deepEqual(g.layers[l]!.topk, topk[l]!.map((c) => Math.round((c / tokens) * 1e4) / 1e4));
      const h = g.layers[l]!.entropy;
      t.true(h > 0 && h <= Math.log(4) + 1e-9);
    }
  }
  // With hidden gates from these very prompts, each group's top-1 favourite at the last layer is its own expert.
  report.groups.forEach((g, e) => {
    const last = g.layers[2]!.top1;
    t.is(last.indexOf(Math.max(...last)), e, `${g.name}: ${last.join(', ')}`);
  });

  const svg = await readFile(path.join(outDir, 'routes.svg'), 'utf8');
  const xml = parseXml(svg);
  t.is(xml.root, 'svg');
  t.is(xml.elements[0]!.attrs.xmlns, 'http://www.w3.org/2000/svg');
  const cells = xml.elements.filter((e) => e.name === 'rect' && e.attrs.width === '64');
  t.is(cells.length, 3 * 4 * 4, 'one cell per layer × group × expert');
  t.true(cells.every((c) => /^#[0-9a-f]{6}$/.test(c.attrs.fill!)));
  t.regex(svg, /fraction of tokens \(top-1\)/);
  for (const name of Object.keys(TOPICS)) t.regex(svg, new RegExp(`>${name}</text>`));
});

test('routes on the golden mixtral-tiny with a tokenizer; prompts-file errors are one line, exit 2', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const moe = await goldenCopy(dir, 'mixtral-tiny', 'mixtral');
  const good = path.join(dir, 'good.yml');
  await writeFile(good, 'a: ["hello world", "abc"]\nb: ["12345"]\n');
  const ok = await runCli(['routes', moe, '--prompts', good]);
  t.is(ok.code, 0, ok.stderr);
  const table = parseTable(ok.stdout);
  t.deepEqual([...table.keys()], [0, 1]);
  for (const rows of table.values()) {
    for (const row of rows.values()) {
      t.is(row.length, 1 + 4 + 4 + 1);
      t.true(Math.abs(row.slice(1, 5).reduce((a, b) => a + b, 0) - 1) < 3e-4, 'top-1 fractions sum to 1');
      t.true(Math.abs(row.slice(5, 9).reduce((a, b) => a + b, 0) - 2) < 3e-4, 'top-2 fractions sum to 2');
    }
  }

  const cases: [string, string, string[], RegExp][] = [
    ['empty.yml', '', [], /error\[invalid_data\]: .*empty\.yml: the prompts file is empty/],
    ['emptylist.yml', 'a: []\n', [], /error\[invalid_data\]: .*emptylist\.yml: a: the group has no prompts/],
    ['notlist.yml', 'a: hello\n', [], /error\[invalid_data\]: .*: a: expected a list of prompt strings/],
    ['unknown.yml', 'code: ["x"]\ncooking: ["y"]\n', ['--expect-groups', 'code,math'], /error\[invalid_data\]: .*: cooking: unknown group "cooking"; expected one of code, math/],
  ];
  for (const [file, text, extra, re] of cases) {
    const f = path.join(dir, file);
    await writeFile(f, text);
    const r = await runCli(['routes', moe, '--prompts', f, ...extra]);
    t.is(r.code, 2, file);
    t.regex(r.stderr, re);
    t.is(r.stderr.trim().split('\n').length, 1, `${file}: one line`);
  }
  const missing = await runCli(['routes', moe, '--prompts', path.join(dir, 'nope.yml')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.yml.*no such file/);
});
