// The end-to-end Hub path: a recipe that names Hub experts is built
// against the emulator (experts pulled into the cache), the result is pushed with
// `build --push`, and a fresh pull of the pushed repo returns it byte for byte.
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';
import { TINY_REPO, guardNetwork, startHubWithTinyModel } from './hub/fixtures.js';

const net = guardNetwork();

test('build from Hub experts, push the result, pull it back byte-identical', async (t) => {
  const hub = await startHubWithTinyModel();
  const { dir, cleanup } = await tempDir();
  t.teardown(async () => {
    await hub.emu.close();
    await cleanup();
  });
  const env = (home: string) => ({ HF_ENDPOINT: hub.emu.url, HF_HOME: path.join(dir, home), HF_TOKEN: hub.alice.token, HF_HUB_CACHE: '', HF_HUB_OFFLINE: '' });
  const recipe = path.join(dir, 'recipe.yml');
  await writeFile(
    recipe,
    [
      `base_model: ${TINY_REPO}`,
      'gate_mode: random',
      'allow_identical_experts: true',
      'experts:',
      `  - source_model: ${TINY_REPO}@v1`,
      `  - source_model: ${TINY_REPO}@dev`,
      '',
    ].join('\n'),
  );
  const out = path.join(dir, 'moe');
  const built = await runCli(['build', recipe, '--out', out, '--quiet', '--push', 'alice/tiny-moe', '--private'], { env: env('builder') });
  t.is(built.code, 0, built.stderr);
  t.is(built.stdout.trim(), `${hub.emu.url}/alice/tiny-moe`);
  t.true(hub.emu.isPrivate('alice/tiny-moe'));

  const pulled = await runCli(['pull', 'alice/tiny-moe', '--include-weights'], { env: env('fresh') });
  t.is(pulled.code, 0, pulled.stderr);
  const snapshot = pulled.stdout.trim();
  const files = (await readdir(out)).sort();
  t.true(files.includes('model.safetensors') && files.includes('config.json'), files.join(', '));
  for (const f of files.filter((name) => /\.(safetensors|json)$/.test(name))) {
    t.deepEqual(await readFile(path.join(snapshot, f)), await readFile(path.join(out, f)), f);
  }
  for (const url of net.urls) t.is(new URL(url).hostname, '127.0.0.1', url);
  t.false((built.stdout + built.stderr + pulled.stdout + pulled.stderr).includes(hub.alice.token));
});

test('build --push without a token is refused before anything is built', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const recipe = path.join(dir, 'recipe.yml');
  await writeFile(recipe, `base_model: ${TINY_REPO}\ngate_mode: random\nexperts:\n  - source_model: ${TINY_REPO}\n`);
  const r = await runCli(['build', recipe, '--out', path.join(dir, 'moe'), '--push', 'alice/x'], {
    env: { HF_ENDPOINT: 'http://127.0.0.1:9', HF_HOME: dir, HF_TOKEN: '', HF_HUB_OFFLINE: '' },
  });
  t.is(r.code, 2);
  t.is(r.stderr.trim(), 'error[hub_unauthorized]: --push: pushing needs a token with write access (set HF_TOKEN or run huggingface-cli login)');
  t.deepEqual(await readdir(dir), ['recipe.yml']);
});
