// `moeforge build --push` of a heterogeneous recipe (issue 9) against the Hub
// emulator: the trust_remote_code repo is uploaded file for file (remote code
// included), and a push that cannot work is refused before anything is built.
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadHeteroRepo } from '../core/hetero/load.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';
import { guardNetwork, startHubWithTinyModel } from './hub/fixtures.js';

const net = guardNetwork();

/** A heterogeneous recipe over local folders: llama-tiny and a narrower 2-layer qwen2 sharing its tokenizer. */
async function heteroRecipe(dir: string): Promise<string> {
  const llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  const narrow = await narrowQwen2(dir);
  const recipe = path.join(dir, 'recipe.yml');
  await writeFile(recipe, `base_model: ${llama}\ngate_mode: random\nexperts:\n  - source_model: ${llama}\n  - source_model: ${narrow}\n`);
  return recipe;
}

async function listFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(folder, path.join(e.parentPath, e.name)).split(path.sep).join('/')).sort();
}

test('build --push of a heterogeneous recipe uploads the whole repo (remote code included), private on request', async (t) => {
  const hub = await startHubWithTinyModel();
  const { dir, cleanup } = await tempDir();
  t.teardown(async () => {
    await hub.emu.close();
    await cleanup();
  });
  const out = path.join(dir, 'moe');
  const env = { HF_ENDPOINT: hub.emu.url, HF_HOME: path.join(dir, 'home'), HF_TOKEN: hub.alice.token, HF_HUB_CACHE: '', HF_HUB_OFFLINE: '' };
  const r = await runCli(['build', await heteroRecipe(dir), '--out', out, '--quiet', '--push', 'alice/hetero-moe', '--private'], { env });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), `${hub.emu.url}/alice/hetero-moe`);
  t.regex(r.stderr, /^created alice\/hetero-moe \(main\), commit [0-9a-f]{40}$/m);
  t.true(hub.emu.isPrivate('alice/hetero-moe'));
  const local = await listFiles(out);
  t.true(local.includes('config.json') && local.some((f) => f.endsWith('.py')) && local.some((f) => f.endsWith('.safetensors')), local.join(', '));
  const remote = hub.emu.files('alice/hetero-moe');
  // The Hub's own .gitattributes comes with the new repo; everything else is ours.
  t.deepEqual([...remote.keys()].filter((f) => f !== '.gitattributes').sort(), local);
  for (const f of local) t.deepEqual(remote.get(f), await readFile(path.join(out, f)), f);
  t.is(JSON.parse(remote.get('config.json')!.toString('utf8')).model_type, 'moeforge_hetero');
  const moe = await loadHeteroRepo(out);
  t.teardown(() => moe.dispose());
  t.deepEqual(moe.names, ['llama', 'narrow']);
  for (const url of net.urls) t.is(new URL(url).hostname, '127.0.0.1', url);
  t.false((r.stdout + r.stderr).includes(hub.alice.token));
});

test('build --push of a heterogeneous recipe without a token is refused before anything is built', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const recipe = await heteroRecipe(dir);
  const before = (await readdir(dir)).sort();
  const r = await runCli(['build', recipe, '--out', path.join(dir, 'moe'), '--push', 'alice/x'], {
    env: { HF_ENDPOINT: 'http://127.0.0.1:9', HF_HOME: path.join(dir, 'home'), HF_TOKEN: '', HF_HUB_OFFLINE: '' },
  });
  t.is(r.code, 2);
  t.is(r.stderr, 'error[hub_unauthorized]: --push: pushing needs a token with write access (set HF_TOKEN or run huggingface-cli login)\n');
  t.deepEqual((await readdir(dir)).sort(), before);
});
