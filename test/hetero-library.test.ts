// The library path of a heterogeneous build (issue 9): `buildMoe` from the public
// index.ts, with createContainer()'s plugins, builds a recipe whose experts differ in
// architecture (through the registered HeteroBuilder, since core cannot import
// export/), says so with `kind`, and the folder loads and runs as the experts do.
import 'reflect-metadata';
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { container as rootContainer } from 'tsyringe';
import { registerExpertSources } from '../experts/sources/register.js';
import { loadHeteroExperts } from '../core/hetero/load.js';
import { MoeforgeError, SafetensorsReader, buildMoe, createContainer, isHeteroFolder, loadHeteroRepo, parseRecipeText } from '../index.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { tempDir } from './helpers/paths.js';

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
const m = { llama: '', narrow: '' };

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-lib-'));
  m.llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  m.narrow = await narrowQwen2(dir);
});
test.after.always(() => cleanup());

async function tensorCount(folder: string): Promise<number> {
  const r = await SafetensorsReader.open(path.join(folder, 'model.safetensors'));
  try {
    return r.tensors.size;
  } finally {
    await r.close();
  }
}

const heteroYaml = (extra = '') =>
  [
    `base_model: ${m.llama}`,
    'gate_mode: hidden',
    'dtype: float32',
    extra,
    'experts:',
    `  - source_model: ${m.llama}`,
    '    positive_prompts: ["the first topic, about apples"]',
    `  - source_model: ${m.narrow}`,
    '    positive_prompts: ["the second topic, about rivers"]',
    '',
  ].join('\n');

test('buildMoe builds a heterogeneous recipe; the folder loads with loadHeteroRepo and mixes as its experts do', async (t) => {
  const c = createContainer();
  const out = path.join(dir, 'moe');
  const built = await buildMoe(c, parseRecipeText(c, heteroYaml(), 'recipe.yml'), out);
  t.is(built.kind, 'hetero');
  if (built.kind !== 'hetero') return;
  const { plan, result } = built;
  t.deepEqual(plan.experts.map((e) => e.ref), [m.llama, m.narrow]);
  t.is(plan.router.kind, 'centroid');
  t.is(result.out, out);
  t.deepEqual(result.report, []);
  t.is(result.shards, 1);
  // Every expert tensor is kept (llama-tiny's and the narrow model's), plus one centroid per expert.
  t.is(result.tensors, (await tensorCount(m.llama)) + (await tensorCount(m.narrow)) + 2);
  const stored = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as { model_type: string; expert_names: string[] };
  t.is(stored.model_type, 'moeforge_hetero');
  t.deepEqual(stored.expert_names, ['llama', 'narrow']);
  t.true(await isHeteroFolder(out));

  const moe = await loadHeteroRepo(out);
  t.teardown(() => moe.dispose());
  t.deepEqual(moe.names, ['llama', 'narrow']);
  // The same mixture from the experts' own folders with the stored centroids: the repo holds the experts unchanged.
  const direct = await loadHeteroExperts([m.llama, m.narrow], ['llama', 'narrow'], moe.router);
  t.teardown(() => direct.dispose());
  const ids = [1, 40, 41, 42, 43, 44];
  const a = await moe.forward([ids]);
  const b = await direct.forward([ids]);
  t.deepEqual(a.routingWeights, b.routingWeights);
  t.deepEqual(a.logits, b.logits);
  t.true(a.routingWeights[0]!.every((w) => w > 0 && w < 1), JSON.stringify(a.routingWeights));
});

test("buildMoe takes the recipe's shard_size, and the shardSize option over it, for a heterogeneous build", async (t) => {
  const c = createContainer();
  const fromRecipe = path.join(dir, 'sharded-recipe');
  const r1 = await buildMoe(c, parseRecipeText(c, heteroYaml('shard_size: 200KB'), 'recipe.yml'), fromRecipe);
  if (r1.kind !== 'hetero') return t.fail(r1.kind);
  t.true(r1.result.shards >= 2, String(r1.result.shards));
  const files = (await readdir(fromRecipe)).filter((f) => f.endsWith('.safetensors'));
  t.is(files.length, r1.result.shards);
  t.true((await readdir(fromRecipe)).includes('model.safetensors.index.json'));
  const override = path.join(dir, 'sharded-option');
  const r2 = await buildMoe(c, parseRecipeText(c, heteroYaml('shard_size: 200KB'), 'recipe.yml'), override, { shardSize: '10GB' });
  if (r2.kind !== 'hetero') return t.fail(r2.kind);
  t.is(r2.result.shards, 1);
  t.is(r2.result.bytes, r1.result.bytes);
});

test('buildMoe of a homogeneous recipe is unchanged: kind moe, plan and result', async (t) => {
  const c = createContainer();
  const out = path.join(dir, 'mixtral');
  const built = await buildMoe(c, parseRecipeText(c, `base_model: ${m.llama}\ngate_mode: random\nallow_identical_experts: true\nexperts:\n  - source_model: ${m.llama}\n  - source_model: ${m.llama}\n`, 'r.yml'), out);
  t.is(built.kind, 'moe');
  if (built.kind !== 'moe') return;
  t.is(built.plan.format.name, 'mixtral');
  t.is(built.result.out, out);
  t.false(await isHeteroFolder(out));
});

test('a container without the heterogeneous builder: one typed error naming what to use', async (t) => {
  const c = rootContainer.createChildContainer();
  registerExpertSources(c);
  const recipe = parseRecipeText(createContainer(), heteroYaml(), 'recipe.yml');
  const e = await t.throwsAsync(buildMoe(c, recipe, path.join(dir, 'never')), { instanceOf: MoeforgeError });
  t.is(e?.code, 'invalid_argument');
  t.regex(e!.message, /heterogeneous builder: use a container from createContainer\(\)/);
  t.false((await readdir(dir)).includes('never'));
});
