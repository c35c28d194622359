// gate_mode learned (objective label): on experts perturbed from the golden llama-tiny,
// built into a Mixtral with the builder, the learned gate routes held-out prompts to
// their expert at least as often as the mergekit `hidden` gate built from the same
// data, and clearly more often when the prompts overlap (a shared prefix and suffix
// make the last-token `hidden` vectors nearly equal). Routing accuracy = fraction of a
// held-out group's tokens whose top-1 expert is the group's expert, mean over groups
// and layers, measured by `moeforge routes`' statistics on the built model.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { initBackend } from '../core/backend.js';
import { buildMoe, parseRecipeText } from '../core/build/build.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Rng } from '../core/rng.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { computeRoutes, type RoutesReport } from '../routers/diagnostics/routing-stats.js';
import { MoeLayerRunner } from '../routers/learned/moe-runner.js';
import { buildTestContainer, goldenCopy, moeOutcome } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

const WORDS = ['alpha', 'beta', 'data', 'value', 'item', 'node', 'list', 'count', 'name', 'text'];
const CAPS = ['THE', 'QUICK', 'BROWN', 'FOX', 'HELLO', 'FRIEND', 'LOVELY', 'DAY', 'GREAT', 'NEWS'];
const SYMS = ['[{(', ')}]', '<>', '~~', '##', '@@', '!!', '??', ';;', '%%', '$$', '^^', '&&', '**'];

/** Deterministic samples of four topics: code, arithmetic, shouting, symbols. */
function topicSamples(topic: number, n: number, seed: number): string[] {
  const rng = new Rng(seed).derive(`topic.${topic}`);
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  return Array.from({ length: n }, () => {
    if (topic === 0) return `def ${pick(WORDS)}(${pick(WORDS)}): return ${pick(WORDS)}.${pick(WORDS)}`;
    if (topic === 1) {
      const a = rng.int(90) + 10;
      const b = rng.int(90) + 10;
      return `${a} + ${b} = ${a + b}, ${b} * 3 = ${b * 3}`;
    }
    if (topic === 2) return `${pick(CAPS)} ${pick(CAPS)} ${pick(CAPS)} ${pick(CAPS)}!`;
    return `${pick(SYMS)} ${pick(SYMS)} ${pick(SYMS)} ${pick(SYMS)} ${pick(SYMS)}`;
  });
}

const overlap = (s: string) => `please read this: ${s} and then say ok.`;

interface Fixture {
  dir: string;
  base: string;
  experts: string[];
}

let fixture: Promise<Fixture> | undefined;
const cleanups: (() => Promise<void>)[] = [];
test.after.always(async () => {
  for (const c of cleanups) await c();
});

function getFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    await initBackend();
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
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
    return { dir, base, experts };
  })();
  return fixture;
}

const container = buildTestContainer();

async function buildWith(f: Fixture, name: string, recipe: string) {
  const out = path.join(f.dir, name);
  const { result } = moeOutcome(await buildMoe(container, parseRecipeText(container, recipe, `${name}.yml`), out));
  return { out, result };
}

/** Mean over groups and layers of the fraction of a group's tokens routed (top-1) to its own expert. */
function accuracy(r: RoutesReport): number {
  let s = 0;
  r.groups.forEach((g, e) => g.layers.forEach((l) => (s += l.top1[e]!)));
  return s / (r.groups.length * r.layers.length);
}

async function heldOutAccuracy(folder: string, heldOut: string[][]): Promise<{ accuracy: number; report: RoutesReport }> {
  const tok = await Tokenizer.fromFolder(folder);
  const model = await CausalLM.load(folder);
  try {
    const groups = new Map(heldOut.map((ps, e) => [`e${e}`, ps]));
    // The prompts as the gates were computed from them: BOS text + prompt, no special tokens added.
    const report = await computeRoutes(model, folder, groups, { encode: (p) => tok.encode((tok.bosToken ?? '') + p, { addSpecialTokens: false }) });
    return { accuracy: accuracy(report), report };
  } finally {
    model.dispose();
  }
}

async function compare(t: { log: (...a: unknown[]) => void }, f: Fixture, tag: string, wrap: (s: string) => string) {
  const train = [0, 1, 2, 3].map((e) => topicSamples(e, 12, 1).map(wrap));
  const heldOut = [0, 1, 2, 3].map((e) => topicSamples(e, 5, 2).map(wrap));
  const files: string[] = [];
  for (const [e, lines] of train.entries()) {
    const file = path.join(f.dir, `${tag}-train-${e}.txt`);
    await writeFile(file, `${lines.join('\n')}\n`);
    files.push(file);
  }
  const hidden = await buildWith(
    f,
    `${tag}-hidden`,
    `base_model: ${f.base}\ngate_mode: hidden\nexperts:\n${f.experts.map((e, i) => `  - source_model: ${e}\n    positive_prompts: ${JSON.stringify(train[i])}`).join('\n')}\n`,
  );
  const learned = await buildWith(
    f,
    `${tag}-learned`,
    `base_model: ${f.base}\ngate_mode: learned\ngate: {epochs: 200, lr: 0.05, holdout: 0.25, patience: 30}\nexperts:\n${f.experts.map((e, i) => `  - source_model: ${e}\n    train_data: ${files[i]}`).join('\n')}\n`,
  );
  const h = await heldOutAccuracy(hidden.out, heldOut);
  const a = { hidden: h.accuracy, learned: (await heldOutAccuracy(learned.out, heldOut)).accuracy };
  t.log(`${tag}: held-out routing accuracy hidden ${a.hidden.toFixed(3)}, learned ${a.learned.toFixed(3)}`);
  t.log(learned.result.gateReport.join('\n'));
  return { learned: learned.out, report: learned.result.gateReport, acc: a, hiddenRoutes: h.report };
}

test.serial('distinct topics: the learned gate routes held-out prompts at least as well as hidden; accuracy per layer in the card', async (t) => {
  const f = await getFixture();
  const r = await compare(t, f, 'distinct', (s) => s);
  t.true(r.acc.learned >= r.acc.hidden, `learned ${r.acc.learned} < hidden ${r.acc.hidden}`);
  t.is(r.report.length, 3);
  r.report.forEach((line, l) => t.regex(line, new RegExp(`^layer ${l}: held-out routing accuracy \\d+\\.\\d%`)));
  const card = await readFile(path.join(r.learned, 'README.md'), 'utf8');
  t.regex(card, /## Gate training\n\n- layer 0: held-out routing accuracy/);
  t.regex(card, /gate mode: `learned`/);
});

test.serial('overlapping prompts (shared prefix and suffix): hidden gates degenerate, the learned gate clearly better', async (t) => {
  const f = await getFixture();
  const r = await compare(t, f, 'overlap', overlap);
  t.log(`hidden gate condition numbers: ${r.hiddenRoutes.layers.map((l) => l.conditionNumber ?? 'inf').join(', ')}`);
  t.true(r.hiddenRoutes.layers.every((l) => l.degenerate), 'the hidden gates are degenerate (condition number > 5 at every layer)');
  t.true(r.acc.learned >= r.acc.hidden + 0.2, `learned ${r.acc.learned} vs hidden ${r.acc.hidden}`);
});

test.serial('the layer runner reproduces the built MoE\'s own router inputs, layer by layer with its gates', async (t) => {
  const f = await getFixture();
  const prompts = ['def f(x): return x', '12 + 35 = 47', 'HELLO THERE', '[{(<>)}] ##'];
  const { out } = await buildWith(
    f,
    'runner-check',
    `base_model: ${f.base}\ngate_mode: hidden\nexperts_per_token: 2\nexperts:\n${f.experts.map((e, i) => `  - source_model: ${e}\n    positive_prompts: [${JSON.stringify(prompts[i])}]`).join('\n')}\n`,
  );
  const tok = await Tokenizer.fromFolder(out);
  const seqs = ['def main(x): return x * 2', '7 * 8 = 56', 'WHAT A DAY', 'a b'].map((p) => tok.encode(p));
  const moe = await CausalLM.load(out);
  t.teardown(() => moe.dispose());
  const ckpt = await Checkpoint.open(out);
  const runner = await MoeLayerRunner.open(f.base, f.experts, { expertsPerToken: 2, normTopkProb: true });
  try {
    await runner.start(seqs);
    for (let l = 0; l < 3; l++) {
      const xs = await runner.routerInputs(l);
      for (const [s, ids] of seqs.entries()) {
        const want = (await moe.forward([ids], { outputRouterInputs: true })).routerInputs!.get(l)!;
        let diff = 0;
        for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(want[i]! - xs[s]![i]!));
        t.true(xs[s]!.length === want.length && diff < 1e-4, `layer ${l}, sequence ${s}: max |Δ| ${diff}`);
      }
      await runner.advance(l, await ckpt.readFloat32(`model.layers.${l}.block_sparse_moe.gate.weight`));
    }
  } finally {
    await runner.close();
    await ckpt.close();
  }
});

test.serial('bad learned-gate input: an expert without data, an empty data file, unknown gate options, train_data with another mode — one line, exit 2', async (t) => {
  const f = await getFixture();
  const empty = path.join(f.dir, 'empty.txt');
  await writeFile(empty, '\n\n');
  const data = path.join(f.dir, 'some.jsonl');
  await writeFile(data, '{"text": "def f(x): return x"}\n"12 + 3 = 15"\n');
  const [e0, e1] = f.experts;
  const cases: [string, string, RegExp][] = [
    [
      'no-data',
      `base_model: ${f.base}\ngate_mode: learned\nexperts:\n  - source_model: ${e0}\n    train_data: ${data}\n  - source_model: ${e1}\n`,
      /^error\[invalid_recipe\]: .*no-data\.yml: experts\[1\]: gate_mode learned needs training data for every expert: give it positive_prompts or a train_data file$/,
    ],
    [
      'empty-data',
      `base_model: ${f.base}\ngate_mode: learned\nexperts:\n  - source_model: ${e0}\n    train_data: ${data}\n  - source_model: ${e1}\n    train_data: ${empty}\n`,
      /^error\[invalid_data\]: .*empty\.txt: the training data file has no samples$/,
    ],
    [
      'bad-option',
      `base_model: ${f.base}\ngate_mode: learned\ngate: {epoch: 3}\nexperts:\n  - source_model: ${e0}\n    train_data: ${data}\n  - source_model: ${e1}\n    positive_prompts: ["x"]\n`,
      /^error\[invalid_recipe\]: gate\.epoch: unknown key; expected one of objective, epochs, lr, balance, holdout, patience$/,
    ],
    [
      'wrong-mode',
      `base_model: ${f.base}\ngate_mode: hidden\nexperts:\n  - source_model: ${e0}\n    positive_prompts: ["a"]\n    train_data: ${data}\n  - source_model: ${e1}\n    positive_prompts: ["b"]\n`,
      /^error\[invalid_recipe\]: .*wrong-mode\.yml: experts\[0\]\.train_data: train_data is read only by gate_mode learned, not hidden$/,
    ],
  ];
  for (const [name, recipe, re] of cases) {
    const file = path.join(f.dir, `${name}.yml`);
    await writeFile(file, recipe);
    const r = await runCli(['build', file, '--out', path.join(f.dir, `out-${name}`), '--quiet']);
    t.is(r.code, 2, `${name}: ${r.stderr}`);
    t.regex(r.stderr.trim(), re, name);
    t.is(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
  }
});
