// The zoo trainer: batches, the fast matMul gradient, loss going down, MLP-only
// tuning leaving the shared weights alone, and a written model that the engine
// loads and runs to the trainer's own logits.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend, tf } from '../core/backend.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { Rng } from '../core/rng.js';
import { installFastMatMulGradient } from '../benchmarks/zoo/fast-grads.js';
import { allVariables, cloneParams, disposeParams, forwardLogits, initParams, mlpVariables, passConstants, type ZooShape } from '../benchmarks/zoo/model.js';
import { testSet, trainSampler, zooTasks } from '../benchmarks/zoo/tasks.js';
import { BOS_ID, EOS_ID, PAD_ID, ZOO_VOCAB_SIZE, encodeChars } from '../benchmarks/zoo/tokenizer.js';
import { makeBatch, train } from '../benchmarks/zoo/trainer.js';
import { writeZooModel } from '../benchmarks/zoo/writer.js';
import { tempDir } from './helpers/paths.js';

const SMALL: ZooShape = { vocabSize: ZOO_VOCAB_SIZE, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000 };

test.before(async () => {
  await initBackend();
  installFastMatMulGradient();
});

test('makeBatch: BOS question answer EOS, right-padded, loss on the answer and EOS only', (t) => {
  const b = makeBatch([
    { question: 'rev:ab=', answer: 'ba' },
    { question: '1+2=', answer: '3' },
  ]);
  const first = [BOS_ID, ...encodeChars('rev:ab=ba'), EOS_ID]; // 11 ids → 10 inputs
  t.deepEqual(b.inputs[0], first.slice(0, -1));
  t.deepEqual(b.targets.slice(0, 10), first.slice(1));
  // position t predicts t+1: answer 'b','a' are ids 8, 9 and EOS is 10 → weights at t = 7, 8, 9
  t.deepEqual(b.weights.slice(0, 10), [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  const second = [BOS_ID, ...encodeChars('1+2=3'), EOS_ID]; // 7 ids
  t.deepEqual(b.inputs[1], [...second, PAD_ID, PAD_ID, PAD_ID]); // padded past the EOS
  t.deepEqual(b.weights.slice(10), [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]);
});

test('the fast matMul gradient gives the textbook gradients dA = dY B^T, dB = A^T dY', (t) => {
  const a = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3]);
  const b = tf.tensor3d([1, 0, 2, -1, 0.5, 3], [1, 3, 2]);
  const w = tf.tensor3d([1, 2, 3, 4], [1, 2, 2]); // loss = sum(w * (a b))
  const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D))))([a, b]);
  // dA[i][k] = sum_j w[i][j] b[k][j]; dB[k][j] = sum_i a[i][k] w[i][j]
  t.deepEqual(Array.from(da!.dataSync()), [1, 0, 6.5, 3, 2, 13.5]);
  t.deepEqual(Array.from(db!.dataSync()), [13, 18, 17, 24, 21, 30]);
});

test('training lowers the loss; MLP-only tuning changes the MLPs and nothing else', async (t) => {
  const tasks = zooTasks(0);
  const rng = new Rng(1);
  const sample = trainSampler(tasks.caesar, testSet(tasks.caesar, 0, 20), rng);
  const p = initParams(SMALL, 3);
  const log = await train(p, { steps: 30, batchSize: 16, learningRate: 1e-2, variables: allVariables(p), sample, logEvery: 10 });
  t.is(log.length, 3);
  t.true(log[2]!.loss < log[0]!.loss - 0.3, `loss ${log.map((l) => l.loss.toFixed(3)).join(' → ')}`);

  const expert = cloneParams(p);
  await train(expert, { steps: 3, batchSize: 8, learningRate: 1e-2, variables: mlpVariables(expert), sample, logEvery: 3 });
  const same = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]!);
  t.is(same(expert.layers[0]!.q, p.layers[0]!.q), 0);
  t.is(same(expert.embed, p.embed), 0);
  t.is(same(expert.layers[1]!.postAttnNorm, p.layers[1]!.postAttnNorm), 0);
  t.true(same(expert.layers[0]!.up, p.layers[0]!.up) > 0);
  disposeParams(expert);
  disposeParams(p);
});

test('a written zoo model loads in the engine and gives the trainer\'s logits; its tokenizer encodes like the trainer', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const p = initParams(SMALL, 5);
  const folder = path.join(dir, 'm');
  await writeZooModel(folder, p, '# test\n');
  const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.is(config.num_key_value_heads, 2);
  t.is(config.torch_dtype, 'float32');
  t.is(config.rope_theta, 10000);

  const tokenizer = await Tokenizer.fromFolder(folder);
  const ids = tokenizer.encode('sort:dcb=');
  t.deepEqual(ids, [BOS_ID, ...encodeChars('sort:dcb=')]);
  t.deepEqual(tokenizer.eosTokenIds, [EOS_ID]);
  t.is(tokenizer.decode([...encodeChars('bcd'), EOS_ID], { skipSpecialTokens: true }), 'bcd');

  const model = await CausalLM.load(folder);
  t.teardown(() => model.dispose());
  const { logits } = await model.forward([ids]);
  const k = passConstants(SMALL, 1, ids.length);
  const mine = tf.tidy(() => forwardLogits(p, [ids], k));
  const want = mine.dataSync();
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i]! - logits[i]!));
  t.is(logits.length, ids.length * ZOO_VOCAB_SIZE);
  t.true(maxDiff < 1e-4, `max |engine - trainer| = ${maxDiff}`);
  mine.dispose();
  disposeParams(p);
});

test('moeforge zoo: a bad --steps is one clear line and exit 2', async (t) => {
  const { runCli } = await import('./helpers/cli.js');
  const r = await runCli(['zoo', '--out', '/tmp/never-written-zoo', '--steps', 'many']);
  t.is(r.code, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /--steps/);
  t.regex(r.stderr, /"many" is not a whole number >= 1/);
});
