// moeforge build end to end on tiny models: a Mixtral of four identical llama-tiny
// experts is llama-tiny again (logits within 1e-5 of the transformers goldens); hidden
// gates equal mergekit's formula recomputed here from the engine's hidden states;
// perturbed experts with their own prompts get their own prompts routed to them; every
// output format validates; the output is atomic and reproducible.
import test from 'ava';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { buildMoe, parseRecipeText } from '../core/build/build.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { summarizeModel } from '../core/inspect.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { buildTestContainer, goldenCopy, moeOutcome } from './helpers/build-fixtures.js';
import { golden, tempDir } from './helpers/paths.js';
import { goldenExpected, maxAbsDiff } from './helpers/tiny-models.js';

const container = buildTestContainer();

async function build(recipeText: string, out: string, opts: { seed?: number; allowIdenticalExperts?: boolean; maxResidentBytes?: number } = {}) {
  const recipe = parseRecipeText(container, recipeText, 'recipe.yml', { allowIdenticalExperts: opts.allowIdenticalExperts ?? false });
  return moeOutcome(await buildMoe(container, recipe, out, {
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    ...(opts.maxResidentBytes === undefined ? {} : { maxResidentBytes: opts.maxResidentBytes }),
  }));
}

async function summarize(folder: string) {
  const ckpt = await Checkpoint.open(folder);
  try {
    const files = (await readdir(folder)).map((name) => ({ name, bytes: 0 }));
    return summarizeModel({ rawConfig: ckpt.rawConfig, tensors: ckpt.headers(), files, label: folder });
  } finally {
    await ckpt.close();
  }
}

/** mergekit's tokenize_prompts, done here independently: bos_token text + prompt, no special tokens. */
async function mergekitIds(folder: string, prompt: string): Promise<number[]> {
  const tok = await Tokenizer.fromFolder(folder);
  return tok.encode((tok.bosToken ?? '') + prompt, { addSpecialTokens: false });
}

test('a Mixtral of four llama-tiny copies reproduces llama-tiny (logits within 1e-5), validates, and carries tokenizer, card and provenance', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const experts = await Promise.all([0, 1, 2, 3].map((i) => goldenCopy(dir, 'llama-tiny', `e${i}`)));
  const recipe = `base_model: ${base}
gate_mode: hidden
experts:
${experts.map((e, i) => `  - source_model: ${e}\n    positive_prompts: ["prompt number ${i}"]`).join('\n')}
`;
  const out = path.join(dir, 'moe');
  const { plan, result } = await build(recipe, out);
  t.is(plan.format.name, 'mixtral');
  t.is(result.tensors, 60);

  const summary = await summarize(out);
  t.deepEqual(summary.problems, []);
  t.is(summary.experts, 4);
  t.is(summary.architecture, 'MixtralForCausalLM');

  const { inputIds, expected } = await goldenExpected(golden('llama-tiny'));
  t.teardown(() => expected.close());
  const model = await CausalLM.load(out);
  t.teardown(() => model.dispose());
  const { logits } = await model.forward(inputIds);
  const want = await expected.readFloat32('logits');
  t.true(maxAbsDiff(logits, want) <= 1e-5, `max |Δlogit| = ${maxAbsDiff(logits, want)}`);

  const files = (await readdir(out)).sort();
  t.deepEqual(files, ['README.md', 'config.json', 'model.safetensors', 'moeforge.yml', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.like(config, { model_type: 'mixtral', num_local_experts: 4, num_experts_per_tok: 2, torch_dtype: 'float32', sliding_window: null });
  const card = await readFile(path.join(out, 'README.md'), 'utf8');
  t.regex(card, /^---\nbase_model:\n {2}- \//);
  t.regex(card, /tags:\n {2}- moe\n {2}- merge\n {2}- moeforge\nlibrary_name: transformers\n---/);
  t.regex(card, /gate mode: `hidden`/);
  const prov = parseYaml(await readFile(path.join(out, 'moeforge.yml'), 'utf8')) as Record<string, unknown>;
  t.like(prov, { base_model: base, seed: 0, architecture: 'mixtral', dtype: 'float32' });

  // Rebuilding from the recorded provenance gives the same bytes.
  const again = path.join(dir, 'again');
  await build(await readFile(path.join(out, 'moeforge.yml'), 'utf8'), again);
  t.deepEqual(await readFile(path.join(again, 'model.safetensors')), await readFile(path.join(out, 'model.safetensors')));
  // Expert FFNs of the same dtype are the input bytes.
  const ck = await Checkpoint.open(out);
  const src = await Checkpoint.open(experts[2]!);
  t.deepEqual(await ck.readRaw('model.layers.1.block_sparse_moe.experts.2.w2.weight'), await src.readRaw('model.layers.1.mlp.down_proj.weight'));
  await ck.close();
  await src.close();
});

test("hidden gates equal mergekit's formula on the engine's hidden states; cheap_embed and router_input likewise", async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const experts = await Promise.all([0, 1, 2].map((i) => goldenCopy(dir, 'llama-tiny', `e${i}`)));
  // Prompts of different lengths (batched with padding by the builder), several per expert, negatives.
  const prompts = [
    { pos: ['def f(x): return x', 'import os'], neg: ['Once upon a time'] },
    { pos: ['2 + 2 = 4', 'integral of x dx', 'prove it'], neg: [] },
    { pos: ['Once upon a time there was a dragon'], neg: ['import os', '2 + 2 = 4'] },
  ];
  const expertsYaml = experts
    .map((e, i) => `  - source_model: ${e}\n    positive_prompts: ${JSON.stringify(prompts[i]!.pos)}${prompts[i]!.neg.length ? `\n    negative_prompts: ${JSON.stringify(prompts[i]!.neg)}` : ''}`)
    .join('\n');
  const engine = await CausalLM.load(base);
  t.teardown(() => engine.dispose());
  const d = 64;
  const L = 3;

  // Independent per-prompt vectors, one unpadded forward pass per prompt.
  const perPrompt = new Map<string, { residual: Float32Array[]; router: Float32Array[]; embedSum: Float64Array }>();
  const embedCk = await Checkpoint.open(base);
  const embed = await embedCk.readFloat32('model.embed_tokens.weight');
  await embedCk.close();
  for (const p of new Set(prompts.flatMap((x) => [...x.pos, ...x.neg]))) {
    const ids = await mergekitIds(base, p);
    const T = ids.length;
    const r = await engine.forward([ids], { outputHiddenStates: true, outputRouterInputs: true });
    const residual = Array.from({ length: L }, (_, l) => r.hiddenStates![l]!.slice((T - 1) * d, T * d));
    const router = Array.from({ length: L }, (_, l) => r.routerInputs!.get(l)!.slice((T - 1) * d, T * d));
    const embedSum = new Float64Array(d);
    for (const id of ids) for (let k = 0; k < d; k++) embedSum[k]! += embed[id * d + k]!;
    perPrompt.set(p, { residual, router, embedSum });
  }
  const mean = (vs: Float32Array[]) => Float64Array.from({ length: d }, (_, k) => vs.reduce((a, v) => a + v[k]!, 0) / vs.length);
  const unit = (v: Float64Array) => {
    const n = Math.max(Math.sqrt(v.reduce((a, x) => a + x * x, 0)), 1e-8);
    return v.map((x) => x / n);
  };
  const expectedGate = (site: 'residual' | 'router', layer: number) =>
    prompts.map(({ pos, neg }) => {
      const v = mean(pos.map((p) => perPrompt.get(p)![site][layer]!));
      if (neg.length) {
        const m = mean(neg.map((p) => perPrompt.get(p)![site][layer]!));
        for (let k = 0; k < d; k++) v[k]! -= m[k]!;
      }
      return unit(v);
    });
  const expectedCheap = () =>
    prompts.map(({ pos, neg }) => {
      const sum = (ps: string[]) => unit(ps.map((p) => perPrompt.get(p)!.embedSum).reduce((a, b) => a.map((x, k) => x + b[k]!), new Float64Array(d)));
      const v = sum(pos);
      if (neg.length) {
        const n = sum(neg);
        for (let k = 0; k < d; k++) v[k]! -= n[k]!;
      }
      return unit(v);
    });

  for (const mode of ['hidden', 'router_input', 'cheap_embed'] as const) {
    const out = path.join(dir, `moe-${mode}`);
    await build(`base_model: ${base}\ngate_mode: ${mode}\ndtype: float32\nexperts:\n${expertsYaml}\n`, out);
    const ck = await Checkpoint.open(out);
    for (let l = 0; l < L; l++) {
      const got = await ck.readFloat32(`model.layers.${l}.block_sparse_moe.gate.weight`);
      const want = mode === 'cheap_embed' ? expectedCheap() : expectedGate(mode === 'hidden' ? 'residual' : 'router', l);
      const flat = new Float32Array(3 * d);
      want.forEach((row, e) => flat.set(row, e * d));
      t.true(maxAbsDiff(got, flat) <= 1e-5, `${mode} layer ${l}: max |Δ| = ${maxAbsDiff(got, flat)}`);
    }
    await ck.close();
  }

  // Under a memory limit below the base's float32 size the engine streams layers: same gates.
  const streamedOut = path.join(dir, 'moe-streamed');
  const { plan } = await build(`base_model: ${base}\ngate_mode: hidden\ndtype: float32\nexperts:\n${expertsYaml}\n`, streamedOut, { maxResidentBytes: 200_000 });
  t.true(plan.engine?.streamed, 'the plan streams the base');
  const a = await Checkpoint.open(path.join(dir, 'moe-hidden'));
  const b = await Checkpoint.open(streamedOut);
  for (let l = 0; l < L; l++) {
    const name = `model.layers.${l}.block_sparse_moe.gate.weight`;
    t.true(maxAbsDiff(await a.readFloat32(name), await b.readFloat32(name)) <= 1e-6, `streamed gate, layer ${l}`);
  }
  await a.close();
  await b.close();
});

test('a Mixtral of four mistral-tiny copies reproduces mistral-tiny (logits within 1e-5)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'mistral-tiny', 'base');
  const experts = await Promise.all([1, 2, 3].map((i) => goldenCopy(dir, 'mistral-tiny', `e${i}`)));
  const out = path.join(dir, 'moe');
  await build(`base_model: ${base}\ngate_mode: cheap_embed\nexperts:\n${[base, ...experts].map((e, i) => `  - source_model: ${e}\n    positive_prompts: ["topic ${i}"]`).join('\n')}\n`, out);
  t.deepEqual((await summarize(out)).problems, []);
  const { inputIds, expected } = await goldenExpected(golden('mistral-tiny'));
  t.teardown(() => expected.close());
  const model = await CausalLM.load(out);
  t.teardown(() => model.dispose());
  const { logits } = await model.forward(inputIds);
  t.true(maxAbsDiff(logits, await expected.readFloat32('logits')) <= 1e-5);
});

test('experts perturbed differently, with their own prompts, get their own prompts routed to them at every layer', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const topics = [
    ['def main print x', 'for i in range', 'import numpy as np'],
    ['12 + 35 = 47', '7 * 8 = 56', '100 / 4 = 25'],
    ['THE QUICK BROWN FOX', 'HELLO THERE FRIEND', 'WHAT A LOVELY DAY'],
    ['[{(<>)}] ~~ ## @@', '!!! ??? ;;; :::', '%% $$ ^^ && **'],
  ];
  const experts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const folder = path.join(dir, `e${i}`);
    await writeSyntheticModel(folder, {
      family: 'llama',
      hiddenSize: 64,
      intermediateSize: 96,
      numLayers: 3,
      vocabSize: 128,
      numHeads: 4,
      numKvHeads: 2,
      seed: 100 + i,
      perturb: { from: base, scale: 0.01, seed: 200 + i, roles: ['mlp_gate', 'mlp_up', 'mlp_down'] },
    });
    experts.push(folder);
  }
  // Perturbation at half the weights' scale (0.01 on N(0, 0.02²) weights): fine-tunes of
  // one base. (At 0.05, far from the base, 31 of 36 prompt×layer pairs route right.)
  for (const mode of ['hidden', 'router_input']) {
    const recipe = `base_model: ${base}\ngate_mode: ${mode}\ndtype: float32\nexperts:\n${experts
      .map((e, i) => `  - source_model: ${e}\n    positive_prompts: ${JSON.stringify(topics[i])}`)
      .join('\n')}\n`;
    const out = path.join(dir, `moe-${mode}`);
    await build(recipe, out);
    await addTokenizerCheck(t, out);
    const moe = await CausalLM.load(out);
    for (const [e, ps] of topics.entries()) {
      for (const p of ps) {
        const ids = await mergekitIds(out, p);
        const r = await moe.forward([ids], { outputRouterLogits: true });
        for (let l = 0; l < 3; l++) {
          const logits = Array.from(r.routerLogits!.get(l)!.slice((ids.length - 1) * 4, ids.length * 4));
          const top = logits.indexOf(Math.max(...logits));
          t.is(top, e, `${mode}: "${p}" at layer ${l}: router logits ${logits.map((x) => x.toFixed(3)).join(', ')}`);
        }
      }
    }
    moe.dispose();
  }
});

async function addTokenizerCheck(t: { true: (v: boolean, m?: string) => void }, out: string): Promise<void> {
  const files = await readdir(out);
  t.true(files.includes('tokenizer.json'), 'the base tokenizer is carried');
}

test('Qwen2-MoE (shared expert from prompts, zero q/k/v biases for llama inputs) and Qwen3-MoE outputs validate and run', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  // qwen2 inputs with a shared expert: mergekit's Qwen MoE.
  const qb = await goldenCopy(dir, 'qwen2-tiny', 'qb');
  const q1 = await goldenCopy(dir, 'qwen2-tiny', 'q1');
  const qOut = path.join(dir, 'qwen2moe');
  const { plan } = await build(
    `base_model: ${qb}\narchitecture: qwen\nexperts:\n  - source_model: ${qb}\n    positive_prompts: ["a"]\n  - source_model: ${q1}\n    positive_prompts: ["b"]\nshared_experts:\n  - source_model: ${qb}\n    positive_prompts: ["c"]\n    residual_scale: 0.5\n`,
    qOut,
  );
  t.is(plan.format.name, 'qwen2_moe');
  const qs = await summarize(qOut);
  t.deepEqual(qs.problems, []);
  t.is(qs.sharedExpertIntermediateSize, 96);
  const qc = JSON.parse(await readFile(path.join(qOut, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.like(qc, { model_type: 'qwen2_moe', num_experts: 2, moe_intermediate_size: 96, shared_expert_intermediate_size: 96, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [] });
  const ck = await Checkpoint.open(qOut);
  const sharedGate = await ck.readFloat32('model.layers.0.mlp.shared_expert_gate.weight');
  t.deepEqual(ck.header('model.layers.0.mlp.shared_expert_gate.weight').shape, [1, 64]);
  t.true(Math.abs(Math.hypot(...sharedGate) - 1) < 1e-5, 'the shared expert gate is a unit vector from its prompts');
  // residual_scale 0.5 on the shared expert's down_proj, as mergekit applies it.
  const src = await Checkpoint.open(qb);
  const down = await src.readFloat32('model.layers.1.mlp.down_proj.weight');
  t.true(maxAbsDiff(await ck.readFloat32('model.layers.1.mlp.shared_expert.down_proj.weight'), down.map((x) => x * 0.5)) < 1e-7);
  await src.close();
  await ck.close();

  // llama inputs as Qwen2-MoE: zero q/k/v biases, the base MLP as shared expert with a zero gate.
  const lb = await goldenCopy(dir, 'llama-tiny', 'lb');
  const l1 = await goldenCopy(dir, 'llama-tiny', 'l1');
  const lOut = path.join(dir, 'llama-qwen2moe');
  await build(`base_model: ${lb}\narchitecture: qwen2_moe\ngate_mode: random\nexperts:\n  - source_model: ${lb}\n  - source_model: ${l1}\n`, lOut);
  t.deepEqual((await summarize(lOut)).problems, []);
  const lc = await Checkpoint.open(lOut);
  t.true((await lc.readFloat32('model.layers.2.self_attn.k_proj.bias')).every((x) => x === 0));
  t.true((await lc.readFloat32('model.layers.2.mlp.shared_expert_gate.weight')).every((x) => x === 0));
  await lc.close();

  // qwen3 inputs: Qwen3-MoE, q_norm / k_norm kept.
  const b3 = path.join(dir, 'b3');
  await writeSyntheticModel(b3, { family: 'qwen3', hiddenSize: 64, intermediateSize: 96, numLayers: 2, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 5 });
  const e3 = path.join(dir, 'e3');
  await writeSyntheticModel(e3, { family: 'qwen3', hiddenSize: 64, intermediateSize: 96, numLayers: 2, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 6 });
  const q3Out = path.join(dir, 'qwen3moe');
  const { plan: p3 } = await build(`base_model: ${b3}\ngate_mode: uniform_random\nexperts:\n  - source_model: ${b3}\n  - source_model: ${e3}\n`, q3Out, { seed: 3 });
  t.is(p3.format.name, 'qwen3_moe');
  const s3 = await summarize(q3Out);
  t.deepEqual(s3.problems, []);
  t.is(s3.architecture, 'Qwen3MoeForCausalLM');
  const c3 = await Checkpoint.open(q3Out);
  const g = await c3.readFloat32('model.layers.1.mlp.gate.weight');
  t.true(g.every((x) => Math.abs(x) <= 1 / 8), 'uniform_random stays within ±1/sqrt(hidden_size)');
  t.true(c3.has('model.layers.0.self_attn.q_norm.weight'));
  await c3.close();

  for (const folder of [qOut, lOut, q3Out]) {
    const m = await CausalLM.load(folder);
    const { logits } = await m.forward([[1, 5, 9, 13]]);
    m.dispose();
    t.true(logits.every(Number.isFinite), `${path.basename(folder)} runs`);
  }
});

test('seeds: random gates and noise_scale repeat with a seed and change with another', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const e1 = await goldenCopy(dir, 'llama-tiny', 'e1');
  const recipe = `base_model: ${base}\ngate_mode: random\nexperts:\n  - source_model: ${base}\n    noise_scale: 0.01\n  - source_model: ${e1}\n`;
  const read = async (out: string) => readFile(path.join(out, 'model.safetensors'));
  await build(recipe, path.join(dir, 'a'), { seed: 1 });
  await build(recipe, path.join(dir, 'b'), { seed: 1 });
  await build(recipe, path.join(dir, 'c'), { seed: 2 });
  t.deepEqual(await read(path.join(dir, 'a')), await read(path.join(dir, 'b')));
  t.notDeepEqual(await read(path.join(dir, 'a')), await read(path.join(dir, 'c')));
  // noise_scale: expert 0's FFN = base + N(0, 0.01²) noise; expert 1's is the input bytes.
  const ck = await Checkpoint.open(path.join(dir, 'a'));
  const src = await Checkpoint.open(base);
  const noisy = await ck.readFloat32('model.layers.0.block_sparse_moe.experts.0.w3.weight');
  const clean = await src.readFloat32('model.layers.0.mlp.up_proj.weight');
  const diff = noisy.map((x, i) => x - clean[i]!);
  const std = Math.sqrt(diff.reduce((a, x) => a + x * x, 0) / diff.length);
  t.true(std > 0.008 && std < 0.012, `noise std ${std}`);
  const gate = await ck.readFloat32('model.layers.0.block_sparse_moe.gate.weight');
  const gStd = Math.sqrt(gate.reduce((a, x) => a + x * x, 0) / gate.length);
  t.true(gStd > 0.8 && gStd < 1.2, `random gate std ${gStd} (torch.randn)`);
  await ck.close();
  await src.close();
});

test('shared_weights: average and a merge method replace the base copy of non-expert tensors', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const e0 = path.join(dir, 'e0');
  const e1 = path.join(dir, 'e1');
  for (const [i, f] of [e0, e1].entries()) {
    await writeSyntheticModel(f, { family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 9, perturb: { from: base, scale: 0.02, seed: 30 + i } });
  }
  const experts = `experts:\n  - source_model: ${e0}\n  - source_model: ${e1}\n`;
  const name = 'model.layers.1.self_attn.q_proj.weight';
  const read = async (f: string) => {
    const c = await Checkpoint.open(f);
    const v = await c.readFloat32(name);
    await c.close();
    return v;
  };
  const [b, x0, x1] = await Promise.all([read(base), read(e0), read(e1)]);
  await build(`base_model: ${base}\ngate_mode: random\nshared_weights: average\n${experts}`, path.join(dir, 'avg'));
  t.true(maxAbsDiff(await read(path.join(dir, 'avg')), x0.map((v, i) => (v + x1[i]!) / 2)) < 1e-7);
  await build(`base_model: ${base}\ngate_mode: random\nshared_weights: {method: task_arithmetic, parameters: {weight: 0.5}}\n${experts}`, path.join(dir, 'ta'));
  // task arithmetic: base + Σ 0.5 (xᵢ − base)
  t.true(maxAbsDiff(await read(path.join(dir, 'ta')), b.map((v, i) => v + 0.5 * (x0[i]! - v) + 0.5 * (x1[i]! - v))) < 1e-6);
  t.deepEqual((await summarize(path.join(dir, 'ta'))).problems, []);
});

test('sharded output: shards of at most --shard-size with an index', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const e1 = await goldenCopy(dir, 'llama-tiny', 'e1');
  const recipe = parseRecipeText(container, `base_model: ${base}\ngate_mode: random\ndtype: bfloat16\nexperts:\n  - source_model: ${base}\n  - source_model: ${e1}\n`, 'r.yml');
  const out = path.join(dir, 'sharded');
  const { plan } = moeOutcome(await buildMoe(container, recipe, out, { shardSize: '200KB' }));
  t.true(plan.shards.length > 1);
  const index = JSON.parse(await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  t.is(index.metadata.total_size, plan.totalBytes);
  t.is(Object.keys(index.weight_map).length, plan.tensors.length);
  t.deepEqual((await summarize(out)).problems, []);
  const ck = await Checkpoint.open(out);
  t.is(ck.header('model.embed_tokens.weight').dtype, 'BF16');
  await ck.close();
  await writeFile(path.join(dir, 'unused'), '');
});
