// The heterogeneous-MoE trainer (routers/learned/hetero, issue 9) on the committed zoo:
// the llama experts (hidden 64) and caesar-qwen2 (qwen2, hidden 96, q/k/v biases), which
// share a tokenizer. The projected form's initialisation reproduces a lone expert exactly,
// training lowers the held-out NLL of the projected path (and of the answer tokens the
// experts were trained on), the sequence router separates the experts' data on raw
// features, option errors name `gate.<key>`, and no tensor is left behind.
// Serial: the leak checks read the process-wide tf.memory().numTensors.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { HETERO_DIR, HETERO_EXPERT_NAME } from '../benchmarks/zoo/hetero-expert.js';
import { EOS_ID } from '../benchmarks/zoo/tokenizer.js';
import { initBackend, tf } from '../core/backend.js';
import { MoeforgeError } from '../core/errors.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { WeightLoader } from '../core/model/weights.js';
import { TOKENS, type HeteroTrainer, type ProjectedExpertInput } from '../core/plugins.js';
import { Rng } from '../core/rng.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { heteroTrainer, parseHeteroGateOptions, projectedForward } from '../routers/learned/hetero/index.js';
import { buildTestContainer } from './helpers/build-fixtures.js';
import { REPO_ROOT } from './helpers/paths.js';

const ZOO = path.join(REPO_ROOT, 'benchmarks', 'zoo', 'models');
const QWEN = path.join(HETERO_DIR, HETERO_EXPERT_NAME);
const V = 74;

interface Row {
  question: string;
  answer: string;
}

async function rows(task: string, from: number, n: number): Promise<Row[]> {
  const lines = (await readFile(path.join(ZOO, 'data', `${task}.test.jsonl`), 'utf8')).trim().split('\n');
  return lines.slice(from, from + n).map((l) => JSON.parse(l) as Row);
}

const tokenizer = Tokenizer.fromFolder(path.join(ZOO, 'base'));
/** BOS question answer EOS, as the zoo trained its experts. */
const encode = async (r: Row) => [...(await tokenizer).encode(r.question + r.answer, { addSpecialTokens: true }), EOS_ID];
const expert = async (name: string, folder: string, task: string, n: number): Promise<ProjectedExpertInput> => ({
  name,
  folder,
  sequences: await Promise.all((await rows(task, 0, n)).map(encode)),
});

/** The figures of a report line `<name>: NLL own model X, projected init Y, trained Z (…)`. */
function nllLine(report: string[], name: string): { own: number; init: number; trained: number } {
  const line = report.find((l) => l.startsWith(`${name}: NLL`));
  const m = line?.match(/own model ([\d.]+), projected init ([\d.]+), trained ([\d.]+);.* \(held-out/);
  if (!m) throw new Error(`no held-out NLL line for ${name} in:\n${report.join('\n')}`);
  return { own: Number(m[1]), init: Number(m[2]), trained: Number(m[3]) };
}

function routerAccuracy(report: string[]): { acc: number; initial: number; held: number } {
  const m = report.join('\n').match(/sequence router: held-out accuracy ([\d.]+) \(initial ([\d.]+)\) on (\d+) sequences/);
  if (!m) throw new Error(`no router line in:\n${report.join('\n')}`);
  return { acc: Number(m[1]), initial: Number(m[2]), held: Number(m[3]) };
}

/** Mean NLL of the answer tokens (and EOS) of `rs` under logits [B*T, V], rows padded to T. */
async function answerNll(logits: Float32Array, rs: Row[], seqs: number[][]): Promise<number> {
  const T = Math.max(...seqs.map((s) => s.length));
  let sum = 0;
  let n = 0;
  for (const [b, s] of seqs.entries()) {
    const q = (await tokenizer).encode(rs[b]!.question, { addSpecialTokens: true }).length;
    for (let t = q - 1; t < s.length - 1; t++) {
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - row[s[t + 1]!]!;
      n++;
    }
  }
  return sum / n;
}

test.before(async () => {
  await initBackend();
});

test('options: defaults, and every bad key or value is one invalid_recipe naming gate.<key>', async (t) => {
  t.deepEqual(parseHeteroGateOptions(undefined), {
    form: 'whole', epochs: 300, lr: 0.05, balance: 0, holdout: 0.2, patience: 30, proj_epochs: 200, proj_lr: 0.01, proj_init: 'least_squares', proj_objective: 'distill', train_shared: false,
  });
  t.is(parseHeteroGateOptions({ form: 'projected', train_shared: true }).form, 'projected');
  const cases: [Record<string, unknown>, string][] = [
    [{ objective: 'lm' }, 'gate.objective'],
    [{ form: 'split' }, 'gate.form'],
    [{ epochs: 0 }, 'gate.epochs'],
    [{ holdout: 1 }, 'gate.holdout'],
    [{ proj_lr: -0.1 }, 'gate.proj_lr'],
    [{ proj_epochs: 1.5 }, 'gate.proj_epochs'],
    [{ train_shared: 'yes' }, 'gate.train_shared'],
    [{ proj_init: 'random' }, 'gate.proj_init'],
    [{ proj_objective: 'kl' }, 'gate.proj_objective'],
  ];
  for (const [raw, where] of cases) {
    const e = t.throws(() => parseHeteroGateOptions(raw), { instanceOf: MoeforgeError });
    t.is(e?.code, 'invalid_recipe');
    t.is(e?.path, where, JSON.stringify(raw));
  }
  t.regex(t.throws(() => parseHeteroGateOptions({ bogus: 1 }))!.message, /expected one of form, epochs/);
  // The trainer parses them before any work.
  const data = { features: new Float32Array(4), dim: 2, labels: Int32Array.from([0, 1]), numExperts: 2, topK: 1 };
  const e = await t.throwsAsync(heteroTrainer.trainSequenceRouter(data, { lr: 'fast' }, new Rng(1)), { instanceOf: MoeforgeError });
  t.is(e?.path, 'gate.lr');
  const p = await t.throwsAsync(heteroTrainer.trainProjected([], 1, { proj_lr: 0 }, new Rng(1)), { instanceOf: MoeforgeError });
  t.is(p?.path, 'gate.proj_lr');
});

test('bad inputs to the projected form are user errors naming the expert', async (t) => {
  const a = await expert('atbash', path.join(ZOO, 'atbash'), 'atbash', 4);
  const short = await t.throwsAsync(heteroTrainer.trainProjected([a, { ...a, name: 'tiny', sequences: [[1]] }], 1, {}, new Rng(1)), { instanceOf: MoeforgeError });
  t.is(short?.code, 'invalid_data');
  t.is(short?.path, 'tiny');
  const k = await t.throwsAsync(heteroTrainer.trainProjected([a], 2, {}, new Rng(1)), { instanceOf: MoeforgeError });
  t.is(k?.path, 'experts_per_token');
  const oov = await t.throwsAsync(heteroTrainer.trainProjected([{ ...a, sequences: [[1, V]] }], 1, {}, new Rng(1)), { instanceOf: MoeforgeError });
  t.is(oov?.path, 'atbash');
});

test('the composition root registers it under TOKENS.HeteroTrainer', (t) => {
  t.is(buildTestContainer().resolve<HeteroTrainer>(TOKENS.HeteroTrainer), heteroTrainer);
});

test.serial('init: a lone expert (D = d_e) through the projected path gives its own CausalLM logits', async (t) => {
  const before = tf.memory().numTensors;
  for (const [name, folder, task] of [['caesar-qwen2', QWEN, 'caesar'], ['atbash', path.join(ZOO, 'atbash'), 'atbash']] as const) {
    const x = await expert(name, folder, task, 6);
    const w = await heteroTrainer.trainProjected([x], 1, { form: 'projected', proj_epochs: 0, epochs: 5 }, new Rng(3));
    const d = name === 'atbash' ? 64 : 96;
    t.is(w.sharedHiddenSize, d);
    t.is(w.embed.length, V * d);
    t.is(w.projIn[0]!.length, d * d);
    // One equal-length row per call: CausalLM.forward takes unpadded rows.
    const model = await CausalLM.load(folder);
    try {
      let maxDiff = 0;
      for (const s of x.sequences.slice(0, 3)) {
        const want = (await model.forward([s])).logits;
        const got = await projectedForward(folder, w, 0, [s]);
        t.is(got.length, want.length);
        for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      }
      t.true(maxDiff < 1e-4, `${name}: max |Δlogit| ${maxDiff}`);
    } finally {
      model.dispose();
    }
    // And so the report's "own model" and "projected init" figures agree.
    const f = nllLine(w.report, name);
    t.true(Math.abs(f.own - f.init) < 1e-3, w.report.join('\n'));
    t.is(f.trained, f.init);
  }
  t.is(tf.memory().numTensors, before);
});

test.serial('MergeME init of two experts (proj_init identity): shared embedding/head = mean of the zero-padded ones, projections [I | 0]', async (t) => {
  const a = await expert('atbash', path.join(ZOO, 'atbash'), 'atbash', 4);
  const c = await expert('caesar-qwen2', QWEN, 'caesar', 4);
  const w = await heteroTrainer.trainProjected([a, c], 1, { proj_epochs: 0, epochs: 5, proj_init: 'identity' }, new Rng(3));
  t.is(w.sharedHiddenSize, 96);
  const embeds: Float32Array[] = [];
  for (const f of [a.folder, c.folder]) {
    const l = await WeightLoader.open(f);
    const e = await l.loadEmbed();
    embeds.push(e.embed.dataSync() as Float32Array);
    l.releaseEmbed(e);
    await l.close();
  }
  for (const [r, col] of [[5, 3], [40, 63], [40, 64], [73, 95]] as const) {
    const want = ((col < 64 ? embeds[0]![r * 64 + col]! : 0) + embeds[1]![r * 96 + col]!) / 2;
    t.true(Math.abs(w.embed[r * 96 + col]! - want) < 1e-7, `embed[${r}, ${col}]`);
  }
  const pin = w.projIn[0]!; // [64, 96]
  t.is(pin.length, 64 * 96);
  t.is(pin[10 * 96 + 10], 1);
  t.is(pin[10 * 96 + 11], 0);
  t.is(pin.reduce((s, v) => s + v, 0), 64);
  const pout = w.projOut[0]!; // [96, 64]
  t.is(pout[63 * 64 + 63], 1);
  t.is(pout.subarray(64 * 64).reduce((s, v) => s + Math.abs(v), 0), 0);
  t.is(w.router.length, 2 * 96);
});

test.serial('MergeME recipe (identity init, objective lm): training lowers the held-out NLL of atbash (llama) + caesar-qwen2; the router separates them', async (t) => {
  const experts = [await expert('atbash', path.join(ZOO, 'atbash'), 'atbash', 20), await expert('caesar-qwen2', QWEN, 'caesar', 20)];
  const before = tf.memory().numTensors;
  const options = { form: 'projected', proj_epochs: 60, proj_lr: 0.003, patience: 20, epochs: 100, proj_init: 'identity', proj_objective: 'lm' };
  const w = await heteroTrainer.trainProjected(experts, 1, options, new Rng(11));
  t.is(tf.memory().numTensors, before, 'tensors left behind');
  t.log(w.report.join('\n'));
  for (const x of experts) {
    const f = nllLine(w.report, x.name);
    t.true(f.trained < f.init - 0.5, `${x.name}: trained ${f.trained} vs init ${f.init}`);
  }
  t.true(routerAccuracy(w.report).acc > 0.5, w.report.join('\n'));
  t.is(w.projIn[0]!.length, 64 * 96);
  t.is(w.projOut[1]!.length, 96 * 96);
  t.is(w.lmHead.length, V * 96);
  t.true(w.projIn.every((p) => p.every(Number.isFinite)));

  // The report's NLL covers the random question letters too; on the answer tokens (what
  // the experts were trained on) of unseen questions, training helps as well.
  const init = await heteroTrainer.trainProjected(experts, 1, { ...options, proj_epochs: 0 }, new Rng(11));
  for (const [e, [folder, task]] of [[path.join(ZOO, 'atbash'), 'atbash'], [QWEN, 'caesar']].entries()) {
    const rs = await rows(task!, 100, 12);
    const seqs = await Promise.all(rs.map(encode));
    const i = await answerNll(await projectedForward(folder!, init, e, seqs), rs, seqs);
    const tr = await answerNll(await projectedForward(folder!, w, e, seqs), rs, seqs);
    t.log(`${task} answer-token NLL: projected init ${i.toFixed(3)}, trained ${tr.toFixed(3)}`);
    t.true(tr < i, `${task}: ${tr} vs ${i}`);
  }
  t.is(tf.memory().numTensors, before);
});

test.serial('train_shared also trains the shared embedding and head (through a one-hot lookup: wasm has no gather gradient)', async (t) => {
  const experts = [await expert('atbash', path.join(ZOO, 'atbash'), 'atbash', 8), await expert('caesar-qwen2', QWEN, 'caesar', 8)];
  const before = tf.memory().numTensors;
  const options = { proj_epochs: 8, proj_lr: 0.003, epochs: 20, proj_init: 'identity', proj_objective: 'lm' };
  const init = await heteroTrainer.trainProjected(experts, 2, { ...options, proj_epochs: 0 }, new Rng(2));
  const fixed = await heteroTrainer.trainProjected(experts, 2, options, new Rng(2));
  const shared = await heteroTrainer.trainProjected(experts, 2, { ...options, train_shared: true }, new Rng(2));
  t.is(tf.memory().numTensors, before);
  t.deepEqual(fixed.embed, init.embed);
  t.deepEqual(fixed.lmHead, init.lmHead);
  const moved = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  t.true(moved(shared.embed, init.embed) > 1e-3, 'embed unchanged');
  t.true(moved(shared.lmHead, init.lmHead) > 1e-3, 'lm_head unchanged');
  t.log(shared.report.join('\n'));
  for (const x of experts) {
    const f = nllLine(shared.report, x.name);
    t.true(f.trained < f.init, `${x.name}: trained ${f.trained} vs init ${f.init}`);
  }
});

test.serial('sequence router: raw mean-embedding features of three tasks, held-out accuracy well above chance, W usable as is', async (t) => {
  const l = await WeightLoader.open(path.join(ZOO, 'base'));
  const e = await l.loadEmbed();
  const embed = e.embed.dataSync() as Float32Array; // [V, 64]
  l.releaseEmbed(e);
  await l.close();
  const tasks = ['atbash', 'caesar', 'complement'];
  const feats: number[] = [];
  const labels: number[] = [];
  for (const [k, task] of tasks.entries()) {
    for (const r of await rows(task, 0, 20)) {
      const s = await encode(r);
      for (let c = 0; c < 64; c++) feats.push(s.reduce((a, id) => a + embed[id * 64 + c]!, 0) / s.length);
      labels.push(k);
    }
  }
  const data = { features: Float32Array.from(feats), dim: 64, labels: Int32Array.from(labels), numExperts: 3, topK: 1 };
  const before = tf.memory().numTensors;
  const r = await heteroTrainer.trainSequenceRouter(data, { epochs: 200 }, new Rng(5));
  t.is(tf.memory().numTensors, before, 'tensors left behind');
  t.log(r.report.join('\n'));
  const { acc, held } = routerAccuracy(r.report);
  t.is(held, 12); // round(0.2 × 20) per task
  t.true(acc >= 0.8, `held-out accuracy ${acc} (chance 0.33)`);
  t.is(r.weight.length, 3 * 64);
  // W applies to the raw features (no standardisation): argmax W·f is the label on most rows.
  let right = 0;
  for (let n = 0; n < labels.length; n++) {
    const scores = [0, 1, 2].map((k) => feats.slice(n * 64, n * 64 + 64).reduce((a, v, c) => a + v * r.weight[k * 64 + c]!, 0));
    if (scores.indexOf(Math.max(...scores)) === labels[n]) right++;
  }
  t.true(right / labels.length >= 0.8, `${right}/${labels.length}`);
  // Seeded: the same rng gives the same router.
  const again = await heteroTrainer.trainSequenceRouter(data, { epochs: 200 }, new Rng(5));
  t.deepEqual(again.weight, r.weight);

  // A loud uninformative coordinate (as raw hidden states have outlier dimensions): its
  // sample means dominate the mean-vector initialisation, which then routes by noise;
  // training, on the raw features still, learns to ignore it.
  const noise = new Rng(9);
  const offset = Float32Array.from(feats, (v, i) => (i % 64 === 0 ? 30 * noise.normal() : v));
  const o = await heteroTrainer.trainSequenceRouter({ ...data, features: offset }, { epochs: 300, lr: 0.05 }, new Rng(5));
  t.log(o.report.join('\n'));
  const f = routerAccuracy(o.report);
  t.true(f.acc > f.initial + 0.2, o.report.join('\n'));
});

test.serial('default init (least squares): each expert starts as itself when the vocabulary is smaller than D; distillation keeps it there', async (t) => {
  // The zoo's 74 tokens < D = 96: the shared matrices map exactly onto each expert's own.
  const experts = [await expert('atbash', path.join(ZOO, 'atbash'), 'atbash', 8), await expert('caesar-qwen2', QWEN, 'caesar', 8)];
  const before = tf.memory().numTensors;
  const w = await heteroTrainer.trainProjected(experts, 1, { proj_epochs: 5, epochs: 20 }, new Rng(4));
  t.is(tf.memory().numTensors, before, 'tensors left behind');
  t.log(w.report.join('\n'));
  t.regex(w.report[0]!, /least-squares projections, objective distill/);
  for (const x of experts) {
    const f = nllLine(w.report, x.name);
    t.true(Math.abs(f.init - f.own) < 0.01, `${x.name}: init ${f.init} vs own ${f.own}`);
    const kl = w.report.find((l) => l.startsWith(`${x.name}:`))!.match(/KL to own model: init ([\d.]+), trained ([\d.]+)/)!;
    t.true(Number(kl[1]) < 0.01 && Number(kl[2]) <= Number(kl[1]) + 1e-6, kl[0]);
  }
  // The engine's logits of the projected caesar-qwen2 equal the expert's own.
  const seqs = [await encode((await rows('caesar', 100, 1))[0]!)];
  const own = await CausalLM.load(QWEN);
  t.teardown(() => own.dispose());
  const want = (await own.forward(seqs)).logits;
  const got = await projectedForward(QWEN, w, 1, seqs);
  t.true(want.reduce((m, v, i) => Math.max(m, Math.abs(v - got[i]!)), 0) < 0.05);
});

test.serial('distillation from an inexact start (identity init) lowers the KL to each expert\'s own distributions', async (t) => {
  const experts = [await expert('atbash', path.join(ZOO, 'atbash'), 'atbash', 12), await expert('caesar-qwen2', QWEN, 'caesar', 12)];
  const w = await heteroTrainer.trainProjected(experts, 1, { proj_init: 'identity', proj_epochs: 30, proj_lr: 0.01, epochs: 20 }, new Rng(6));
  t.log(w.report.join('\n'));
  for (const x of experts) {
    const kl = w.report.find((l) => l.startsWith(`${x.name}:`))!.match(/KL to own model: init ([\d.]+), trained ([\d.]+)/)!;
    t.true(Number(kl[2]) < 0.7 * Number(kl[1]), kl[0]);
  }
});
