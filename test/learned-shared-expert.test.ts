// A Qwen2-MoE shared expert built as a merge of the routed experts' MLPs
// (`shared_experts: [{merge: {method, parameters}}]`, the shared part of Twin-Merging,
// arXiv 2406.15479): with task arithmetic at weight 1/E the shared expert is exactly the
// mean of the experts' MLPs, the routed experts are kept intact, the output validates
// and runs; a wrong spec is one line.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { buildMoe, parseRecipeText } from '../core/build/build.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { summarizeModel } from '../core/inspect.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { buildTestContainer, goldenCopy, moeOutcome } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

test('shared expert = task-arithmetic merge of the experts (= their mean at weight 1/2); routed experts intact', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'qwen2-tiny', 'base');
  const experts: string[] = [];
  for (let i = 0; i < 2; i++) {
    const f = path.join(dir, `e${i}`);
    await writeSyntheticModel(f, {
      family: 'qwen2', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 1, tieWordEmbeddings: true,
      perturb: { from: base, scale: 0.02, seed: 50 + i, roles: ['mlp_gate', 'mlp_up', 'mlp_down'] },
    });
    experts.push(f);
  }
  const recipe = `base_model: ${base}
architecture: qwen2_moe
gate_mode: hidden
experts_per_token: 1
experts:
  - source_model: ${experts[0]}
    positive_prompts: ["def f(x): return x"]
  - source_model: ${experts[1]}
    positive_prompts: ["12 + 35 = 47"]
shared_experts:
  - merge: {method: task_arithmetic, parameters: {weight: 0.5}}
    positive_prompts: ["hello"]
`;
  const container = buildTestContainer();
  const out = path.join(dir, 'moe');
  const { plan } = moeOutcome(await buildMoe(container, parseRecipeText(container, recipe, 'recipe.yml'), out));
  t.is(plan.format.name, 'qwen2_moe');

  const moe = await Checkpoint.open(out);
  t.teardown(() => moe.close());
  const src = await Promise.all(experts.map((e) => Checkpoint.open(e)));
  t.teardown(() => Promise.all(src.map((c) => c.close())));
  const summary = summarizeModel({ rawConfig: moe.rawConfig, tensors: moe.headers(), files: [{ name: 'model.safetensors', bytes: 0 }], label: out });
  t.deepEqual(summary.problems, []);
  for (let l = 0; l < 3; l++) {
    for (const p of ['gate_proj', 'up_proj', 'down_proj']) {
      const a = await src[0]!.readFloat32(`model.layers.${l}.mlp.${p}.weight`);
      const b = await src[1]!.readFloat32(`model.layers.${l}.mlp.${p}.weight`);
      const shared = await moe.readFloat32(`model.layers.${l}.mlp.shared_expert.${p}.weight`);
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(shared[i]! - (a[i]! + b[i]!) / 2));
      t.true(diff < 1e-6, `layer ${l} ${p}: max |shared − mean| = ${diff}`);
      t.deepEqual(await moe.readFloat32(`model.layers.${l}.mlp.experts.0.${p}.weight`), a, 'routed expert 0 intact');
      t.deepEqual(await moe.readFloat32(`model.layers.${l}.mlp.experts.1.${p}.weight`), b, 'routed expert 1 intact');
    }
  }
  const model = await CausalLM.load(out);
  t.teardown(() => model.dispose());
  const { logits } = await model.forward([[1, 20, 30, 40]]);
  t.true(logits.every(Number.isFinite));
});

test('a merged shared expert: source_model and merge together, an unknown method, a Mixtral output — one line, exit 2', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'qwen2-tiny', 'base');
  const other = await goldenCopy(dir, 'qwen2-tiny', 'other');
  const head = `base_model: ${base}\ngate_mode: hidden\nexperts:\n  - source_model: ${base}\n    positive_prompts: ["a"]\n  - source_model: ${other}\n    positive_prompts: ["b"]\n`;
  const cases: [string, string, RegExp][] = [
    ['both', `${head}architecture: qwen2_moe\nshared_experts:\n  - source_model: ${base}\n    merge: {method: ties}\n`, /^error\[invalid_recipe\]: .*both\.yml: shared_experts\[0\]: give a shared expert either source_model or merge/],
    ['unknown', `${head}architecture: qwen2_moe\nshared_experts:\n  - merge: {method: tiez}\n`, /^error\[invalid_recipe\]: shared_experts\[0\]\.merge\.method: unknown merge method "tiez"/],
    ['mixtral', `${head}architecture: mixtral\nshared_experts:\n  - merge: {method: ties}\n`, /^error\[incompatible_models\]: architecture: .*Mixtral does not support shared experts$/],
  ];
  for (const [name, text, re] of cases) {
    const file = path.join(dir, `${name}.yml`);
    await writeFile(file, text);
    const r = await runCli(['build', file, '--out', path.join(dir, `out-${name}`), '--quiet']);
    t.is(r.code, 2, `${name}: ${r.stderr}`);
    t.regex(r.stderr.trim(), re, name);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});
