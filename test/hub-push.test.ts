// Pushing to the Hub (emulated): the repo is created (private on request), files go
// up through @huggingface/hub's uploadFilesWithProgress (safetensors via LFS basic
// transfer), a branch is created when asked, and a fresh pull returns the same bytes.
import test from 'ava';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError } from '../core/errors.js';
import { pullModel } from '../experts/hub/pull.js';
import { pushFolder } from '../export/push.js';
import { golden, tempDir } from './helpers/paths.js';
import { guardNetwork, startHubWithTinyModel, testContext, type TinyHub } from './hub/fixtures.js';

const net = guardNetwork();
let hub: TinyHub;
let folder: string;
let removeTemp: () => Promise<void>;

test.before(async () => {
  hub = await startHubWithTinyModel();
  const { dir, cleanup } = await tempDir('moeforge-push-');
  removeTemp = cleanup;
  folder = path.join(dir, 'out');
  await mkdir(folder);
  await cp(golden('llama-tiny'), folder, { recursive: true });
  await writeFile(path.join(folder, 'README.md'), '---\nlibrary_name: transformers\ntags: [moe, merge, moeforge]\n---\n# tiny\n');
  await writeFile(path.join(folder, 'tokenizer_config.json'), '{"model_max_length": 256}');
  await mkdir(path.join(folder, '.cache'));
  await writeFile(path.join(folder, '.cache', 'junk'), 'not uploaded');
});
test.after.always(async () => {
  await hub?.emu.close();
  await removeTemp?.();
});
test.after.always('no request left 127.0.0.1', (t) => {
  t.true(net.urls.length > 0);
  for (const url of net.urls) t.is(new URL(url).hostname, '127.0.0.1', url);
});

const UPLOADED = ['README.md', 'config.json', 'expected.safetensors', 'model.safetensors', 'tokenizer_config.json'];

test.serial('push creates a private repo, uploads safetensors through LFS, and a fresh pull is byte-identical', async (t) => {
  hub.emu.clearLog();
  const progress = new Set<string>();
  const r = await pushFolder(folder, 'alice/tiny-moe', {
    endpoint: hub.emu.url,
    token: hub.alice.token,
    private: true,
    message: 'Upload tiny MoE',
    onProgress: (e) => e.progress >= 1 && progress.add(e.file),
  });
  t.true(r.created);
  t.is(r.branch, 'main');
  t.deepEqual(r.files, UPLOADED);
  t.is(r.commit, hub.emu.head('alice/tiny-moe'));
  t.true(hub.emu.isPrivate('alice/tiny-moe'));
  t.deepEqual([...progress].sort(), UPLOADED);
  const stored = hub.emu.files('alice/tiny-moe');
  for (const name of UPLOADED) t.deepEqual(stored.get(name), await readFile(path.join(folder, name)), name);
  t.false(stored.has('.cache/junk'));
  t.true(hub.emu.fileInfo('alice/tiny-moe', 'model.safetensors')!.lfs);
  t.false(hub.emu.fileInfo('alice/tiny-moe', 'config.json')!.lfs);
  const puts = hub.emu.log.filter((l) => l.method === 'PUT').map((l) => l.url);
  t.is(puts.length, 2); // the two safetensors, via the LFS basic transfer
  t.true(hub.emu.log.some((l) => l.url.endsWith('/commit/main') && l.status === 200));

  // A fresh cache pulls the pushed model back, byte for byte (private: with the token).
  const { ctx, cleanup } = await testContext(hub.emu, { token: hub.alice.token });
  t.teardown(cleanup);
  const pulled = await pullModel('alice/tiny-moe', ctx);
  t.is(pulled.commit, r.commit);
  for (const name of ['config.json', 'model.safetensors', 'tokenizer_config.json']) {
    t.deepEqual(await readFile(path.join(pulled.folder, name)), await readFile(path.join(folder, name)), name);
  }
});

test.serial('push to a new branch of an existing repo creates the branch and leaves main alone', async (t) => {
  const main = hub.emu.head('alice/tiny-moe');
  await writeFile(path.join(folder, 'README.md'), '# tiny v2\n');
  const r = await pushFolder(folder, 'alice/tiny-moe', { endpoint: hub.emu.url, token: hub.alice.token, revision: 'v2' });
  t.false(r.created);
  t.is(r.branch, 'v2');
  t.is(hub.emu.head('alice/tiny-moe'), main);
  t.is(hub.emu.head('alice/tiny-moe', 'v2'), r.commit);
  t.is(hub.emu.files('alice/tiny-moe', 'v2').get('README.md')!.toString(), '# tiny v2\n');
  // The LFS objects were already there: no second upload of the weights.
  t.is(hub.emu.log.filter((l) => l.method === 'PUT').length, 2);
});

test.serial('push without a token, with a wrong one, or to a foreign namespace is hub_unauthorized', async (t) => {
  const none = await t.throwsAsync(pushFolder(folder, 'alice/x', { endpoint: hub.emu.url, token: undefined }), { instanceOf: MoeforgeError });
  t.is(none.code, 'hub_unauthorized');
  const wrong = 'hf_wrongwrongwrongwrong';
  const bad = await t.throwsAsync(pushFolder(folder, 'alice/x', { endpoint: hub.emu.url, token: wrong }), { instanceOf: MoeforgeError });
  t.is(bad.code, 'hub_unauthorized');
  t.false(bad.toLine().includes(wrong));
  const foreign = await t.throwsAsync(pushFolder(folder, 'bob/x', { endpoint: hub.emu.url, token: hub.alice.token }), { instanceOf: MoeforgeError });
  t.is(foreign.code, 'hub_unauthorized');
  t.false(hub.emu.hasRepo('bob/x'));
  t.false(hub.emu.hasRepo('alice/x'));
});
