// Heterogeneous experts (issue 9), training-free form: detection, the shared-tokenizer
// check, the sequence router, mixing (against hand-computed mixtures and the goldens),
// export as a trust_remote_code repo, and the engine reproducing its logits on it.
import test from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { charTokenizerFiles } from '../benchmarks/synthetic/char-tokenizer.js';
import { architectureDifference } from '../core/build/hetero.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { normalizeConfig } from '../core/config/normalize.js';
import { MoeforgeError } from '../core/errors.js';
import { fitCentroids } from '../core/hetero/centroids.js';
import { loadHeteroExperts, loadHeteroRepo } from '../core/hetero/load.js';
import { meanLogprob, routeWeights } from '../core/hetero/router.js';
import { checkSharedTokenizer } from '../core/hetero/tokenizer-check.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { logSoftmax } from '../core/model/sampling.js';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { templatesDir, writeHeteroRepo } from '../export/formats/hetero/write.js';
import type { CausalScorer } from '../routers/baselines/perplexity-router.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { golden, tempDir } from './helpers/paths.js';

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
const m = { llama: '', qwen2: '', narrow: '' };

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-'));
  m.llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  m.qwen2 = await goldenCopy(dir, 'qwen2-tiny', 'qwen2');
  // A qwen2-architecture expert of another width and depth, same vocabulary and tokenizer.
  m.narrow = await narrowQwen2(dir);
});
test.after.always(() => cleanup());

async function goldenInput(model: 'llama-tiny' | 'qwen2-tiny'): Promise<{ ids: number[][]; logits: Float32Array }> {
  const r = await SafetensorsReader.open(path.join(golden(model), 'expected.safetensors'));
  try {
    const flat = await r.readFloat32('input_ids');
    const [b, t] = r.header('input_ids').shape as [number, number];
    const ids = Array.from({ length: b }, (_, i) => Array.from(flat.subarray(i * t, (i + 1) * t), Math.round));
    return { ids, logits: await r.readFloat32('logits') };
  } finally {
    await r.close();
  }
}

const cfg = async (folder: string) => normalizeConfig(JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')), folder);

test('detection: an expert of another family, width or depth differs from the base; a copy does not', async (t) => {
  t.is(architectureDifference(await cfg(m.llama), await cfg(m.llama)), '');
  t.is(architectureDifference(await cfg(m.qwen2), await cfg(m.llama)), 'model_type qwen2 vs llama');
  t.is(
    architectureDifference(await cfg(m.narrow), await cfg(m.llama)),
    'model_type qwen2 vs llama, hidden_size 32 vs 64, num_hidden_layers 2 vs 3, head_dim 8 vs 16, intermediate_size 48 vs 96',
  );
});

test('shared tokenizer: identical files pass; another vocabulary or special token is one line naming both and the first difference', async (t) => {
  const src = (folder: string, i: number) => ({ ref: folder, field: `experts[${i}].source_model`, folder, vocabSize: 128 });
  await t.notThrowsAsync(checkSharedTokenizer([src(m.llama, 0), src(m.qwen2, 1), src(m.narrow, 2)]));

  const small = path.join(dir, 'tok-small');
  await mkdir(small);
  for (const [f, text] of Object.entries(charTokenizerFiles({ vocabSize: 100 }))) await writeFile(path.join(small, f), text);
  const e1 = await t.throwsAsync(checkSharedTokenizer([src(m.llama, 0), src(small, 1)]), { instanceOf: MoeforgeError });
  t.is(e1.code, 'incompatible_models');
  t.is(e1.path, 'experts[1].source_model');
  t.is(e1.message, `heterogeneous experts must share one tokenizer: ${m.llama} and ${small} differ (token 100 is "=" vs absent)`);

  const eos = path.join(dir, 'tok-eos');
  await mkdir(eos);
  for (const [f, text] of Object.entries(charTokenizerFiles({ vocabSize: 128, eosId: 3 }))) await writeFile(path.join(eos, f), text);
  const e2 = await t.throwsAsync(checkSharedTokenizer([src(m.llama, 0), src(eos, 1)]), { instanceOf: MoeforgeError });
  t.regex(e2.message, /differ \(token 2 is "<\/s>" vs "<\|system\|>"\)$/);
  t.false(e2.message.includes('\n'));

  const e3 = await t.throwsAsync(checkSharedTokenizer([src(m.llama, 0), { ...src(m.narrow, 1), vocabSize: 96 }]), { instanceOf: MoeforgeError });
  t.regex(e3.message, /\(vocab_size 128 vs 96\)$/);
});

test('routeWeights: softmax over all experts, top k, renormalised; ties to the lower index', (t) => {
  // p ∝ [1, 3, 2]: top 2 = experts 1 and 2 with 3/5 and 2/5.
  const w = routeWeights([0, Math.log(3), Math.log(2)], 2, 1);
  t.deepEqual(w.map((x) => Number(x.toFixed(12))), [0, 0.6, 0.4]);
  t.deepEqual(routeWeights([0, 0, 0], 2, 1), [0.5, 0.5, 0]);
  t.deepEqual(routeWeights([5, 1, 9], 1, 1), [0, 0, 1]);
  // Temperature 2 halves the scores: p ∝ [1, √3] over the two kept.
  const w2 = routeWeights([0, Math.log(3)], 2, 2);
  t.true(Math.abs(w2[1]! - Math.sqrt(3) / (1 + Math.sqrt(3))) < 1e-12);
});

test('mixing: k = 1 gives the expert alone (golden logits, log-softmaxed); k = 2 is logsumexp(log w + log p) per token', async (t) => {
  const moe = await loadHeteroExperts([m.llama, m.qwen2, m.narrow], ['llama', 'qwen2', 'narrow'], { kind: 'uniform', topK: 2, temperature: 1 });
  t.teardown(() => moe.dispose());
  const { ids, logits: golden } = await goldenInput('llama-tiny');
  const v = 128;
  const one = await moe.forward(ids, { routingWeights: ids.map(() => [1, 0, 0]) });
  let worst = 0;
  for (let r = 0; r < ids.length * ids[0]!.length; r++) {
    const ref = logSoftmax(golden.subarray(r * v, (r + 1) * v));
    for (let i = 0; i < v; i++) worst = Math.max(worst, Math.abs(one.logits[r * v + i]! - ref[i]!));
  }
  t.true(worst < 2e-4, `max |Δ| vs golden ${worst}`);

  const w = [0.3, 0, 0.7];
  const mixed = await moe.forward([ids[0]!], { routingWeights: [w] });
  const a = (await moe.experts[0]!.forward([ids[0]!])).logits;
  const c = (await moe.experts[2]!.forward([ids[0]!])).logits;
  let worstMix = 0;
  let massErr = 0;
  for (let r = 0; r < ids[0]!.length; r++) {
    const la = logSoftmax(a.subarray(r * v, (r + 1) * v));
    const lc = logSoftmax(c.subarray(r * v, (r + 1) * v));
    let mass = 0;
    for (let i = 0; i < v; i++) {
      const ref = Math.log(0.3 * Math.exp(la[i]!) + 0.7 * Math.exp(lc[i]!));
      worstMix = Math.max(worstMix, Math.abs(mixed.logits[r * v + i]! - ref));
      mass += Math.exp(mixed.logits[r * v + i]!);
    }
    massErr = Math.max(massErr, Math.abs(mass - 1));
  }
  t.true(worstMix < 1e-5, `max |Δ| vs hand mixture ${worstMix}`);
  t.true(massErr < 1e-5, 'the mixture is a distribution');
  // Uniform routing, k = 2: the first two experts, half each.
  const routed = await moe.forward([ids[0]!]);
  t.deepEqual(routed.routingWeights, [[0.5, 0.5, 0]]);
});

test('perplexity routing: scores are each expert\'s mean token log-prob; the router weights follow them; CausalScorer surface', async (t) => {
  const moe = await loadHeteroExperts([m.llama, m.narrow], ['llama', 'narrow'], { kind: 'perplexity', topK: 2, temperature: 0.5 });
  t.teardown(() => moe.dispose());
  const scorer: CausalScorer = moe; // what the eval harness and the perplexity baseline call
  const ids = [1, 40, 41, 42, 43, 44, 10, 11, 12];
  const scores = await moe.scores(ids);
  for (let e = 0; e < 2; e++) t.is(scores[e], meanLogprob(await moe.experts[e]!.tokenLogprobs(ids)));
  const w = await moe.route(ids);
  const p0 = 1 / (1 + Math.exp((scores[1]! - scores[0]!) / 0.5));
  t.true(Math.abs(w[0]! - p0) < 1e-12 && Math.abs(w[1]! - (1 - p0)) < 1e-12);
  // logLikelihood routes on the context only, then sums the mixture's log-probs of the continuation.
  const context = ids.slice(0, 5);
  const cont = ids.slice(5);
  const ll = await scorer.logLikelihood(context, cont);
  const wc = await moe.route(context);
  const f = await moe.forward([ids.slice(0, -1)], { routingWeights: [wc] });
  const expected = cont.reduce((s, tok, i) => s + f.logits[(context.length - 1 + i) * 128 + tok]!, 0);
  t.true(Math.abs(ll.logprob - expected) < 1e-9);
  t.is(ll.tokenLogprobs.length, cont.length);
  // One token: nothing to score, every expert 0 → equal weights.
  t.deepEqual(await moe.scores([1]), [0, 0]);
  const gen = await scorer.generate([1, 40, 41], { maxNewTokens: 4 });
  t.is(gen.length, 4);
});

test('export: trust_remote_code repo (auto_map, templates, prefixed tensors, tokenizer, card); the engine reproduces its logits on it', async (t) => {
  const folders = [m.llama, m.qwen2, m.narrow];
  const names = ['llama', 'qwen2', 'narrow'];
  const before = await loadHeteroExperts(folders, names, { kind: 'perplexity', topK: 2, temperature: 1 });
  // Centroids fitted by the experts themselves on a prompt each.
  const prompts = [[[1, 40, 41, 42, 43]], [[1, 10, 11, 12]], [[1, 60, 61, 62, 63, 64]]];
  const centroids = await fitCentroids(before.experts, prompts, names);
  t.deepEqual(centroids.map((c) => c.length), [64, 64, 32]);
  before.router.kind = 'centroid';
  before.router.centroids = centroids;
  const ids = [
    [1, 40, 41, 42, 43, 44, 45, 46],
    [1, 10, 11, 12, 13, 14, 15, 16],
  ];
  const ref = await before.forward(ids);
  const refLl = await before.logLikelihood([1, 60, 61], [62, 63, 64]);
  before.dispose();

  const out = path.join(dir, 'hetero-out');
  const r = await writeHeteroRepo(out, {
    experts: folders.map((folder, i) => ({ name: names[i]!, ref: `org/${names[i]}`, folder })),
    router: { kind: 'centroid', topK: 2, temperature: 1, centroids },
    tokenizerFolder: m.llama,
    shardSizeBytes: 200_000, // several shards + index
    recipeYaml: 'base_model: org/llama\n',
  });
  t.true(r.shards > 1);

  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, any>;
  t.is(config.model_type, 'moeforge_hetero');
  t.deepEqual(config.architectures, ['MoeforgeHeteroForCausalLM']);
  t.deepEqual(config.auto_map, {
    AutoConfig: 'configuration_moeforge_hetero.MoeforgeHeteroConfig',
    AutoModelForCausalLM: 'modeling_moeforge_hetero.MoeforgeHeteroForCausalLM',
  });
  t.deepEqual(config.expert_configs.map((c: any) => [c.model_type, c.hidden_size]), [['llama', 64], ['qwen2', 64], ['qwen2', 32]]);
  t.is(config.router_type, 'centroid');
  t.is(config.num_experts_per_tok, 2);
  for (const f of ['configuration_moeforge_hetero.py', 'modeling_moeforge_hetero.py']) {
    t.is(await readFile(path.join(out, f), 'utf8'), await readFile(path.join(templatesDir(), f), 'utf8'));
  }
  // The modules auto_map names exist and define the classes it names.
  const modeling = await readFile(path.join(out, 'modeling_moeforge_hetero.py'), 'utf8');
  t.regex(modeling, /^class MoeforgeHeteroForCausalLM\(PreTrainedModel, GenerationMixin\):/m);
  t.regex(await readFile(path.join(out, 'configuration_moeforge_hetero.py'), 'utf8'), /^class MoeforgeHeteroConfig\(PretrainedConfig\):\n {4}model_type = "moeforge_hetero"/m);
  const index = JSON.parse(await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const stored = Object.keys(index.weight_map);
  t.true(stored.includes('experts.0.model.layers.2.mlp.down_proj.weight'));
  t.true(stored.includes('experts.0.lm_head.weight'));
  t.false(stored.includes('experts.1.lm_head.weight'), 'qwen2-tiny ties its head: none stored, as in its own folder');
  t.true(stored.includes('experts.2.model.layers.1.self_attn.q_proj.bias'));
  t.deepEqual(stored.filter((n) => n.startsWith('router.')).sort(), ['router.centroids.0', 'router.centroids.1', 'router.centroids.2']);
  t.true(stored.every((n) => /^(experts\.[0-2]\.(model|lm_head)\.|router\.centroids\.\d$)/.test(n)));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    t.is(await readFile(path.join(out, f), 'utf8'), await readFile(path.join(m.llama, f), 'utf8'));
  }
  const card = await readFile(path.join(out, 'README.md'), 'utf8');
  t.regex(card, /^---\nbase_model:\n {2}- org\/llama\n {2}- org\/qwen2\n {2}- org\/narrow\n/);
  t.regex(card, /trust_remote_code=True/);

  // The same bytes under prefixes: the engine gives back exactly the logits it computed before export.
  const after = await loadHeteroRepo(out);
  t.teardown(() => after.dispose());
  t.is(after.router.kind, 'centroid');
  t.deepEqual(after.names, names);
  const got = await after.forward(ids);
  t.deepEqual(got.routingWeights, ref.routingWeights);
  let worst = 0;
  for (let i = 0; i < ref.logits.length; i++) worst = Math.max(worst, Math.abs(got.logits[i]! - ref.logits[i]!));
  t.is(worst, 0);
  t.deepEqual(await after.logLikelihood([1, 60, 61], [62, 63, 64]), refLl);
  // Each expert inside the repo is the engine's CausalLM on a view of the shards.
  const alone = await CausalLM.load(m.narrow);
  t.teardown(() => alone.dispose());
  t.deepEqual((await after.experts[2]!.forward([ids[0]!])).logits, (await alone.forward([ids[0]!])).logits);
});

test('Checkpoint.view: prefixed names, the view\'s own config; closing it leaves the parent open', async (t) => {
  const out = path.join(dir, 'hetero-view');
  await writeHeteroRepo(out, {
    experts: [m.narrow, m.llama].map((folder, i) => ({ name: `e${i}`, ref: folder, folder })),
    router: { kind: 'perplexity', topK: 1, temperature: 1 },
    tokenizerFolder: m.narrow,
  });
  const cp = await Checkpoint.open(out);
  t.teardown(() => cp.close());
  const v = cp.view('experts.1.', { model_type: 'llama' });
  t.is(v.rawConfig['model_type'], 'llama');
  t.is(v.header('lm_head.weight').name, 'lm_head.weight');
  t.deepEqual(v.header('lm_head.weight').shape, [128, 64]);
  await v.close();
  const direct = await Checkpoint.open(m.llama);
  t.teardown(() => direct.close());
  t.deepEqual(await cp.readFloat32('experts.1.model.norm.weight'), await direct.readFloat32('model.norm.weight'));
  t.deepEqual(await v.readFloat32('model.norm.weight'), await direct.readFloat32('model.norm.weight'));
  t.true(v.has('model.layers.2.mlp.up_proj.weight'));
  t.false(cp.view('experts.0.', {}).has('model.layers.2.mlp.up_proj.weight'), 'expert 0 has 2 layers');
});
