// Heterogeneous MoEs with a trained router or in MergeME's projected form (issue 9 §2-3):
// the engine on exported repos against formulas computed here by hand (plain loops, not
// the engine's folding), before/after export equality, and bad repos.
import test from 'ava';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { MoeforgeError } from '../core/errors.js';
import { loadHeteroExperts, loadHeteroRepo } from '../core/hetero/load.js';
import { learnedFeatures, meanFinalHidden } from '../core/hetero/model.js';
import { loadProjectedExperts } from '../core/hetero/projected.js';
import { routeWeights } from '../core/hetero/router.js';
import { CausalLM } from '../core/model/causal-lm.js';
import type { ProjectedWeights } from '../core/plugins.js';
import { Rng } from '../core/rng.js';
import { writeSafetensors } from '../core/safetensors/writer.js';
import { writeHeteroRepo } from '../export/formats/hetero/write.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
const m = { llama: '', narrow: '' };
const V = 128;
const D = 64;
const WIDTHS = [64, 32];
const ids = [1, 40, 41, 42, 43, 44, 10, 11, 12];

function randn(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** a [r, k] · b [k, c] (bT: b given as [c, k]) in float64 loops. */
function matmul(a: Float32Array, r: number, k: number, b: Float32Array, c: number, bT: boolean): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let x = 0; x < k; x++) s += a[i * k + x]! * (bT ? b[j * k + x]! : b[x * c + j]!);
      out[i * c + j] = s;
    }
  }
  return out;
}

function projectedWeights(seed: number): ProjectedWeights {
  const rng = new Rng(seed);
  return {
    sharedHiddenSize: D,
    embed: randn(rng, V * D, 0.5),
    lmHead: randn(rng, V * D, 0.5),
    projIn: WIDTHS.map((d) => randn(rng, d * D, 1 / Math.sqrt(D))),
    projOut: WIDTHS.map((d) => randn(rng, D * d, 1 / Math.sqrt(d))),
    router: randn(rng, WIDTHS.length * D, 1),
    report: ['trained by hand'],
  };
}

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-proj-'));
  m.llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  m.narrow = await narrowQwen2(dir);
});
test.after.always(() => cleanup());

const experts = () => [
  { name: 'llama', ref: m.llama, folder: m.llama },
  { name: 'narrow', ref: m.narrow, folder: m.narrow },
];

/** A dense copy of `folder` whose embed_tokens and lm_head are the given [V, d] matrices (untied). */
async function denseWith(folder: string, out: string, embed: Float32Array, head: Float32Array): Promise<string> {
  await cp(folder, out, { recursive: true });
  const ckpt = await Checkpoint.open(folder);
  const d = embed.length / V;
  const tensors = [];
  try {
    for (const name of ckpt.names()) {
      if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') continue;
      const h = ckpt.header(name);
      tensors.push({ name, dtype: 'F32' as const, shape: h.shape, data: new Uint8Array((await ckpt.readFloat32(name)).buffer) });
    }
  } finally {
    await ckpt.close();
  }
  tensors.push({ name: 'model.embed_tokens.weight', dtype: 'F32' as const, shape: [V, d], data: new Uint8Array(embed.buffer) });
  tensors.push({ name: 'lm_head.weight', dtype: 'F32' as const, shape: [V, d], data: new Uint8Array(head.buffer) });
  await writeSafetensors(path.join(out, 'model.safetensors'), tensors);
  const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(out, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
  return out;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i]!)), 0);

test('projected form: each expert computes H·P_out·norm(layers(E[ids]·P_inᵀ)); the router reads the mean shared embedding', async (t) => {
  const p = projectedWeights(1);
  const out = path.join(dir, 'projected');
  const r = await writeHeteroRepo(out, { experts: experts(), router: { kind: 'embedding', topK: 1, temperature: 1, weight: p.router }, tokenizerFolder: m.llama, projected: p, report: p.report });
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.is(config['hetero_form'], 'projected');
  t.is(config['shared_hidden_size'], D);
  t.is(config['router_type'], 'embedding');
  // The experts' embeddings and heads are not stored; the shared ones and the projections are.
  const stored = await Checkpoint.open(out);
  t.teardown(() => stored.close());
  t.false(stored.has('experts.0.model.embed_tokens.weight'));
  t.false(stored.has('experts.0.lm_head.weight'));
  t.deepEqual(stored.header('proj_in.1.weight').shape, [32, D]);
  t.deepEqual(stored.header('proj_out.1.weight').shape, [D, 32]);
  t.deepEqual(stored.header('router.gate.weight').shape, [2, D]);
  t.is(r.tensors, stored.names().length);
  t.regex(await readFile(path.join(out, 'README.md'), 'utf8'), /trained by hand/);

  const moe = await loadHeteroRepo(out);
  t.teardown(() => moe.dispose());
  // Reference for each expert: a dense model whose embedding is E·P_inᵀ and head H·P_out, multiplied here in loops.
  for (const [e, folder] of [m.llama, m.narrow].entries()) {
    const d = WIDTHS[e]!;
    const ref = await CausalLM.load(await denseWith(folder, path.join(dir, `ref-${e}`), matmul(p.embed, V, D, p.projIn[e]!, d, true), matmul(p.lmHead, V, D, p.projOut[e]!, d, false)));
    const want = (await ref.forward([ids])).logits;
    ref.dispose();
    const got = (await moe.experts[e]!.forward([ids])).logits;
    t.true(maxDiff(got, want) < 1e-4, `expert ${e}: max |Δ| ${maxDiff(got, want)}`);
  }
  // Router: W · mean_t E[ids_t], softmax, top 1.
  const mean = new Float64Array(D);
  for (const id of ids) for (let i = 0; i < D; i++) mean[i]! += p.embed[id * D + i]! / ids.length;
  const scores = [0, 1].map((e) => mean.reduce((s, x, i) => s + x * p.router[e * D + i]!, 0));
  const got = await moe.scores(ids);
  scores.forEach((s, e) => t.true(Math.abs(got[e]! - s) < 1e-4, `score ${e}: ${got[e]} vs ${s}`));
  t.deepEqual(await moe.route(ids), routeWeights(scores, 1, 1));
});

test('projected form: identity projections over the padded embedding and head give the widest expert back', async (t) => {
  // One expert of width D: E = its embedding, H = its head, P_in = P_out = I.
  const ckpt = await Checkpoint.open(m.llama);
  const embed = await ckpt.readFloat32('model.embed_tokens.weight');
  const head = await ckpt.readFloat32('lm_head.weight');
  await ckpt.close();
  const eye = Float32Array.from({ length: D * D }, (_, i) => (i % (D + 1) === 0 ? 1 : 0));
  const p: ProjectedWeights = { sharedHiddenSize: D, embed, lmHead: head, projIn: [eye], projOut: [eye], router: new Float32Array(D), report: [] };
  const moe = await loadProjectedExperts([m.llama], ['llama'], p, 1);
  t.teardown(() => moe.dispose());
  const own = await CausalLM.load(m.llama);
  t.teardown(() => own.dispose());
  const want = (await own.forward([ids])).logits;
  const got = (await moe.experts[0]!.forward([ids])).logits;
  t.true(maxDiff(got, want) < 1e-5, `max |Δ| ${maxDiff(got, want)}`);
});

test('projected form: the exported repo reproduces the logits computed before export (batch with padding, routed per row)', async (t) => {
  const p = projectedWeights(2);
  const out = path.join(dir, 'projected-2');
  await writeHeteroRepo(out, { experts: experts(), router: { kind: 'embedding', topK: 2, temperature: 1, weight: p.router }, tokenizerFolder: m.llama, projected: p });
  const before = await loadProjectedExperts([m.llama, m.narrow], ['llama', 'narrow'], p, 2);
  t.teardown(() => before.dispose());
  const after = await loadHeteroRepo(out);
  t.teardown(() => after.dispose());
  const batch = [ids, [0, 0, 0, 1, 50, 51, 52, 53, 54]];
  const mask = [ids.map(() => 1), [0, 0, 0, 1, 1, 1, 1, 1, 1]];
  const a = await before.forward(batch, { attentionMask: mask });
  const b = await after.forward(batch, { attentionMask: mask });
  t.deepEqual(b.routingWeights, a.routingWeights);
  t.true(maxDiff(a.logits, b.logits) < 1e-6, `max |Δ| ${maxDiff(a.logits, b.logits)}`);
});

test('learned router (whole form): scores are W · [mean final hidden state of each expert]', async (t) => {
  const rng = new Rng(3);
  const weight = randn(rng, 2 * (64 + 32), 0.3);
  const out = path.join(dir, 'learned');
  await writeHeteroRepo(out, { experts: experts(), router: { kind: 'learned', topK: 1, temperature: 1, weight }, tokenizerFolder: m.llama });
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.is(config['hetero_form'], 'whole');
  t.is(config['router_type'], 'learned');
  const moe = await loadHeteroRepo(out);
  t.teardown(() => moe.dispose());
  const own = await loadHeteroExperts([m.llama, m.narrow], ['llama', 'narrow'], { kind: 'uniform', topK: 1, temperature: 1 });
  t.teardown(() => own.dispose());
  const f = [...(await meanFinalHidden(own.experts[0]!, ids)), ...(await meanFinalHidden(own.experts[1]!, ids))];
  t.deepEqual(Array.from(await learnedFeatures(own.experts, ids)), f);
  const scores = [0, 1].map((e) => f.reduce((s, x, i) => s + x * weight[e * f.length + i]!, 0));
  const got = await moe.scores(ids);
  scores.forEach((s, e) => t.true(Math.abs(got[e]! - s) < 1e-4, `score ${e}: ${got[e]} vs ${s}`));
});

test('bad repos: a router that does not fit the form, a too narrow shared width, a projection or router of the wrong shape: one line each', async (t) => {
  const p = projectedWeights(4);
  const good = path.join(dir, 'projected-bad');
  await writeHeteroRepo(good, { experts: experts(), router: { kind: 'embedding', topK: 1, temperature: 1, weight: p.router }, tokenizerFolder: m.llama, projected: p });
  const configPath = path.join(good, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;

  await writeFile(configPath, JSON.stringify({ ...config, router_type: 'perplexity' }));
  const e1 = await t.throwsAsync(loadHeteroRepo(good), { instanceOf: MoeforgeError });
  t.is(e1.code, 'invalid_config');
  t.regex(e1.message, /router_type perplexity does not fit hetero_form projected \(expected embedding or uniform\)/);

  await writeFile(configPath, JSON.stringify({ ...config, shared_hidden_size: 16 }));
  const e2 = await t.throwsAsync(loadHeteroRepo(good), { instanceOf: MoeforgeError });
  t.regex(e2.message, /shared_hidden_size ≥ the widest expert's hidden_size 64, got 16/);

  await writeFile(configPath, JSON.stringify(config));
  // The exporter checks shapes: a projection of the wrong width never reaches a file.
  const e3 = await t.throwsAsync(
    writeHeteroRepo(path.join(dir, 'projected-bad-3'), { experts: experts(), router: { kind: 'embedding', topK: 1, temperature: 1, weight: p.router }, tokenizerFolder: m.llama, projected: { ...p, projIn: [p.projIn[0]!, new Float32Array(32 * 48)] } }),
  );
  t.regex(e3.message, /proj_in\.1\.weight: 1536 values for shape \[32, 64\]/);

  const wrongRouter = path.join(dir, 'learned-bad');
  await writeHeteroRepo(wrongRouter, { experts: experts(), router: { kind: 'learned', topK: 1, temperature: 1, weight: new Float32Array(2 * 64) }, tokenizerFolder: m.llama });
  const e4 = await t.throwsAsync(loadHeteroRepo(wrongRouter), { instanceOf: MoeforgeError });
  t.is(e4.code, 'shape_mismatch');
  t.is(e4.path, 'router.gate.weight');
  t.regex(e4.message, /router weight has 128 values, expected \[2, 96\]/);
});

test('inspect describes the projected form: its shared tensors and projections are known, the experts complete', async (t) => {
  const p = projectedWeights(5);
  const out = path.join(dir, 'projected-inspect');
  await writeHeteroRepo(out, { experts: experts(), router: { kind: 'embedding', topK: 1, temperature: 1, weight: p.router }, tokenizerFolder: m.llama, projected: p });
  const r = await runCli(['inspect', out, '--json']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { form: string; router: { type: string }; problems: unknown[]; experts: { summary: { problems: unknown[] } }[] };
  t.is(s.form, 'projected');
  t.is(s.router.type, 'embedding');
  t.deepEqual(s.problems, []);
  t.deepEqual(s.experts.map((e) => e.summary.problems), [[], []]);
  // Declared wider than stored: every shared tensor and projection is reported, exit 2.
  const configPath = path.join(out, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(configPath, JSON.stringify({ ...config, shared_hidden_size: 80 }));
  const bad = await runCli(['inspect', out, '--json']);
  t.is(bad.code, 2);
  const problems = (JSON.parse(bad.stdout) as { problems: { tensor: string; kind: string }[] }).problems;
  t.deepEqual(problems.map((q) => q.tensor).sort(), ['proj_in.0.weight', 'proj_in.1.weight', 'proj_out.0.weight', 'proj_out.1.weight', 'router.gate.weight', 'shared.embed_tokens.weight', 'shared.lm_head.weight']);
  t.true(problems.every((q) => q.kind === 'shape'));
});
