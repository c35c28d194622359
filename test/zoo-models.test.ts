// The committed expert zoo (benchmarks/zoo/models): every folder loads in the
// engine, experts differ from the base in the tuned MLPs only (what makes
// `shared_weights: base` lossless), each expert answers its own held-out
// questions (greedy, through CausalLM.generate and the model's own tokenizer)
// and the base and the other experts do not, the suite validates with the
// harness, and the zoo fits the commit budget.
import test from 'ava';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { loadSuite } from '../benchmarks/eval/suite.js';
import { TASK_NAMES, type Sample, type TaskName } from '../benchmarks/zoo/tasks.js';
import { REPO_ROOT } from './helpers/paths.js';

const ZOO = path.join(REPO_ROOT, 'benchmarks', 'zoo', 'models');
const N = 50;

async function samples(task: TaskName): Promise<Sample[]> {
  const text = await readFile(path.join(ZOO, 'data', `${task}.test.jsonl`), 'utf8');
  return text.trim().split('\n').slice(0, N).map((l) => JSON.parse(l) as Sample);
}

async function accuracy(folder: string, task: TaskName, limit = N): Promise<number> {
  const tokenizer = await Tokenizer.fromFolder(folder);
  const model = await CausalLM.load(folder);
  try {
    const data = (await samples(task)).slice(0, limit);
    let right = 0;
    for (const s of data) {
      const out = await model.generate(tokenizer.encode(s.question), { maxNewTokens: s.answer.length + 1, stopTokens: tokenizer.eosTokenIds });
      if (tokenizer.decode(out, { skipSpecialTokens: true }) === s.answer) right++;
    }
    return right / data.length;
  } finally {
    model.dispose();
  }
}

test('the zoo holds a base, four experts, the suite and held-out sets, in under 10 MB', async (t) => {
  const manifest = JSON.parse(await readFile(path.join(ZOO, 'zoo.json'), 'utf8')) as { expertLayers: number[] };
  t.deepEqual(manifest.expertLayers.length > 0, true);
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else bytes += (await stat(p)).size;
    }
  };
  await walk(ZOO);
  t.true(bytes <= 10 * 1024 * 1024, `${bytes} bytes`);
  for (const m of ['base', ...TASK_NAMES]) {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
      await t.notThrowsAsync(stat(path.join(ZOO, m, f)), `${m}/${f}`);
    }
  }
  const suite = await loadSuite(path.join(ZOO, 'zoo-suite.yml'));
  t.deepEqual(suite.tasks.map((x) => x.name), [...TASK_NAMES]);
});

test('experts differ from the base only in the tuned layers\' MLP weights', async (t) => {
  const manifest = JSON.parse(await readFile(path.join(ZOO, 'zoo.json'), 'utf8')) as { expertLayers: number[] };
  const tuned = new Set(manifest.expertLayers.flatMap((l) => ['gate_proj', 'up_proj', 'down_proj'].map((p) => `model.layers.${l}.mlp.${p}.weight`)));
  const base = await Checkpoint.open(path.join(ZOO, 'base'));
  t.teardown(() => base.close());
  for (const name of TASK_NAMES) {
    const expert = await Checkpoint.open(path.join(ZOO, name));
    try {
      t.deepEqual([...expert.names()].sort(), [...base.names()].sort());
      for (const tensor of base.names()) {
        const a = await base.readFloat32(tensor);
        const b = await expert.readFloat32(tensor);
        const equal = a.every((v, i) => v === b[i]);
        t.is(equal, !tuned.has(tensor), `${name}: ${tensor}`);
      }
    } finally {
      await expert.close();
    }
  }
});

for (const task of TASK_NAMES) {
  test(`the ${task} expert answers >= 90% of its held-out questions; the base and another expert far fewer`, async (t) => {
    const own = await accuracy(path.join(ZOO, task), task);
    t.true(own >= 0.9, `${task} expert: ${own}`);
    const base = await accuracy(path.join(ZOO, 'base'), task, 20);
    t.true(base <= 0.2, `base on ${task}: ${base}`);
    const other = TASK_NAMES[(TASK_NAMES.indexOf(task) + 1) % TASK_NAMES.length]!;
    const cross = await accuracy(path.join(ZOO, other), task, 20);
    t.true(cross <= 0.3, `${other} expert on ${task}: ${cross}`);
  });
}
