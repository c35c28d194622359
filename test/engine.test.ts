// The forward engine against the goldens (transformers' outputs), resident and
// layer-streamed, with every intermediate tensor disposed.
import test from 'ava';
import { tf } from '../core/backend.js';
import { CausalLM } from '../core/model/causal-lm.js';
import path from 'node:path';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { GOLDEN_MODELS, golden, tempDir } from './helpers/paths.js';
import { goldenExpected, maxAbsDiff } from './helpers/tiny-models.js';

const TOL = 1e-4;

for (const name of GOLDEN_MODELS) {
  test.serial(`${name}: logits, every hidden state and router logit match transformers`, async (t) => {
    const folder = golden(name);
    const { inputIds, expected } = await goldenExpected(folder);
    t.teardown(() => expected.close());
    const model = await CausalLM.load(folder, { mode: 'resident' });
    t.teardown(() => model.dispose());
    t.is(model.mode, 'resident');
    const before = tf.memory().numTensors;
    const r = await model.forward(inputIds, { outputHiddenStates: true, outputRouterLogits: true, outputRouterInputs: true });
    t.is(tf.memory().numTensors, before, 'every intermediate tensor disposed');
    t.is(r.batch, 2);
    t.is(r.seqLen, 12);
    t.true(maxAbsDiff(r.logits, await expected.readFloat32('logits')) < TOL, 'logits');
    const L = model.config.numLayers;
    t.is(r.hiddenStates!.length, L + 1);
    for (let k = 0; k <= L; k++) {
      t.true(maxAbsDiff(r.hiddenStates![k]!, await expected.readFloat32(`hidden_states.${k}`)) < TOL, `hidden_states.${k}`);
    }
    const routerNames = [...expected.tensors.keys()].filter((n) => n.startsWith('router_logits.')).sort();
    t.deepEqual(
      [...r.routerLogits!.keys()].map((l) => `router_logits.${l}`),
      routerNames,
      'router logits for exactly the sparse layers',
    );
    for (const [layer, logits] of r.routerLogits!) {
      t.true(maxAbsDiff(logits, await expected.readFloat32(`router_logits.${layer}`)) < TOL, `router_logits.${layer}`);
    }
    t.is(r.routerInputs!.size, L, 'a router input for every decoder layer, dense ones too');
    t.is(r.routerInputs!.get(0)!.length, 24 * model.config.hiddenSize);
  });
}

test.serial('streamed mode gives the same outputs as resident and holds at most one layer of weights', async (t) => {
  const folder = golden('mixtral-tiny');
  const { inputIds, expected } = await goldenExpected(folder);
  t.teardown(() => expected.close());
  const start = tf.memory().numTensors;
  const startBytes = tf.memory().numBytes;

  const resident = await CausalLM.load(folder, { mode: 'resident' });
  const total = resident.weightBytes.total;
  const a = await resident.forward(inputIds, { outputHiddenStates: true, outputRouterLogits: true, outputRouterInputs: true });
  resident.dispose();
  t.is(tf.memory().numTensors, start, 'resident: load + forward + dispose leaves nothing');

  // A limit well under the model: 'auto' must stream, resident must refuse.
  const limit = Math.floor(total / 2);
  const err = await t.throwsAsync(CausalLM.load(folder, { mode: 'resident', maxResidentBytes: limit }));
  t.is((err as { code?: string }).code, 'out_of_memory');

  const streamed = await CausalLM.load(folder, { mode: 'auto', maxResidentBytes: limit });
  t.is(streamed.mode, 'streamed');
  t.is(tf.memory().numBytes, startBytes, 'streamed load holds no weights');
  let peakTfBytes = 0;
  const timer = setInterval(() => (peakTfBytes = Math.max(peakTfBytes, tf.memory().numBytes)), 0);
  const b = await streamed.forward(inputIds, { outputHiddenStates: true, outputRouterLogits: true, outputRouterInputs: true });
  clearInterval(timer);
  const { peak } = streamed.weightBytes;
  streamed.dispose();
  t.is(tf.memory().numTensors, start, 'streamed: load + forward + dispose leaves nothing');

  t.true(peak > 0 && peak <= limit, `weights held at once ${peak} <= limit ${limit} < model ${total}`);
  t.true(peakTfBytes <= limit, `sampled tf bytes ${peakTfBytes} <= ${limit}`);
  t.deepEqual(b.logits, a.logits);
  t.deepEqual(b.hiddenStates, a.hiddenStates);
  t.deepEqual(b.routerLogits, a.routerLogits);
  t.deepEqual(b.routerInputs, a.routerInputs);
  t.true(maxAbsDiff(b.logits, await expected.readFloat32('logits')) < TOL);
});

test.serial('a streamed limit smaller than one layer is refused with out_of_memory', async (t) => {
  const err = await t.throwsAsync(CausalLM.load(golden('llama-tiny'), { mode: 'streamed', maxResidentBytes: 1000 }));
  t.is((err as { code?: string }).code, 'out_of_memory');
  t.regex(err!.message, /max-resident-bytes 1000/);
});

test.serial('skipLogits: the same hidden states and router inputs, no logits, and streamed mode never loads the head', async (t) => {
  const folder = golden('llama-tiny-bf16');
  const { inputIds, expected } = await goldenExpected(golden('llama-tiny'));
  t.teardown(() => expected.close());
  const full = await CausalLM.load(folder, { mode: 'resident' });
  t.teardown(() => full.dispose());
  const want = await full.forward(inputIds, { outputHiddenStates: true, outputRouterInputs: true });
  const streamed = await CausalLM.load(folder, { mode: 'streamed' });
  t.teardown(() => streamed.dispose());
  const before = tf.memory().numTensors;
  const got = await streamed.forward(inputIds, { outputHiddenStates: true, outputRouterInputs: true, skipLogits: true });
  t.is(tf.memory().numTensors, before, 'every intermediate tensor disposed');
  t.is(got.logits.length, 0);
  const L = full.config.numLayers;
  t.is(got.hiddenStates!.length, L, 'the inputs of the L layers, no final norm');
  for (let k = 0; k < L; k++) t.deepEqual(got.hiddenStates![k], want.hiddenStates![k], `hidden_states.${k}`);
  for (let l = 0; l < L; l++) t.deepEqual(got.routerInputs!.get(l), want.routerInputs!.get(l), `router input ${l}`);
});

test.serial('skipLogits in streamed mode never loads the head (a model whose head is its largest weight)', async (t) => {
  const { dir, cleanup } = await tempDir('moeforge-skip-logits-');
  t.teardown(cleanup);
  const folder = path.join(dir, 'wide-vocab');
  await writeSyntheticModel(folder, { hiddenSize: 32, intermediateSize: 64, numLayers: 2, vocabSize: 4096, numHeads: 4, numKvHeads: 2, seed: 3 });
  const model = await CausalLM.load(folder, { mode: 'streamed' });
  t.teardown(() => model.dispose());
  await model.forward([[1, 2, 3, 4]], { outputRouterInputs: true, skipLogits: true });
  const headBytes = 4 * (4096 * 32 + 32); // lm_head + final norm
  t.true(model.weightBytes.peak < headBytes, `peak ${model.weightBytes.peak} vs head ${headBytes}`);
  await model.forward([[1, 2, 3, 4]]);
  t.true(model.weightBytes.peak >= headBytes, 'a full pass does load it');
});
