import test from 'ava';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from './helpers/cli.js';
import { golden, tempDir } from './helpers/paths.js';
import { TINY_REPO, startHubWithTinyModel } from './hub/fixtures.js';

/** Element count of every tensor, straight from the safetensors header (independent of moeforge's reader). */
async function elementCount(file: string): Promise<number> {
  const bytes = await readFile(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape?: number[] }>;
  let total = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name !== '__metadata__') total += (entry.shape ?? []).reduce((a, b) => a * b, 1);
  }
  return total;
}

test('inspect --json on mixtral-tiny: mixtral, 4 experts, 2 per token, parameters = element count', async (t) => {
  const folder = golden('mixtral-tiny');
  const r = await runCli(['inspect', folder, '--json']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Record<string, any>;
  t.is(s.modelType, 'mixtral');
  t.is(s.experts, 4);
  t.is(s.expertsPerToken, 2);
  t.is(s.layers, 2);
  t.is(s.parameters.total, await elementCount(path.join(folder, 'model.safetensors')));
  t.true(s.parameters.activePerToken < s.parameters.total);
  t.deepEqual(s.problems, []);
});

test('inspect prints a readable summary for a dense model', async (t) => {
  const r = await runCli(['inspect', golden('qwen2-tiny')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /qwen2/);
  t.regex(r.stdout, /Qwen2ForCausalLM/);
});

test('inspect on a folder with a corrupt safetensors file: one line, exit 2', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const folder = path.join(dir, 'broken');
  await mkdir(folder);
  await copyFile(path.join(golden('llama-tiny'), 'config.json'), path.join(folder, 'config.json'));
  const bytes = await readFile(path.join(golden('llama-tiny'), 'model.safetensors'));
  await writeFile(path.join(folder, 'model.safetensors'), bytes.subarray(0, 1000)); // truncated inside the header
  const r = await runCli(['inspect', folder]);
  t.is(r.code, 2);
  t.regex(r.stderr, /^error\[corrupt_safetensors\]: .*model\.safetensors: /);
  t.is(r.stderr.trim().split('\n').length, 1);
});

test('inspect reports a missing tensor as a problem and exits 2', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const folder = path.join(dir, 'mixtral-as-llama');
  await mkdir(folder);
  // llama-tiny's weights under a config that claims 4 layers: layer 3's tensors are missing.
  const config = JSON.parse(await readFile(path.join(golden('llama-tiny'), 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(folder, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 4 }));
  await copyFile(path.join(golden('llama-tiny'), 'model.safetensors'), path.join(folder, 'model.safetensors'));
  const r = await runCli(['inspect', folder]);
  t.is(r.code, 2);
  t.regex(r.stdout, /model\.layers\.3\.self_attn\.q_proj\.weight/);
});

test('inspect org/name reads a Hub repo from its headers without downloading weights', async (t) => {
  const hub = await startHubWithTinyModel();
  const { dir, cleanup } = await tempDir();
  t.teardown(async () => {
    await hub.emu.close();
    await cleanup();
  });
  const r = await runCli(['inspect', TINY_REPO, '--json'], {
    env: { HF_ENDPOINT: hub.emu.url, HF_HOME: dir, HF_TOKEN: '', HF_HUB_CACHE: '', HF_HUB_OFFLINE: '' },
  });
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Record<string, any>;
  t.is(s.modelType, 'llama');
  t.is(s.parameters.total, await elementCount(path.join(golden('llama-tiny'), 'model.safetensors')));
  t.is(s.bytesOnDisk > 0, true);
  t.deepEqual(s.problems, []);
  // Only ranged reads inside the header: no request fetched the weights.
  const header = (await readFile(path.join(golden('llama-tiny'), 'model.safetensors'))).readBigUInt64LE(0);
  const served = hub.emu.byteRequests('model.safetensors');
  t.true(served.length > 0);
  for (const l of served) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(l.range ?? '');
    t.truthy(m, `unranged request for model.safetensors: ${l.url}`);
    t.true(Number(m![2]) < 8 + Number(header), `range ${l.range} reaches past the header`);
  }
});
