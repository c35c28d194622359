// Reliability against the Hub emulator: a cut transfer resumes with Range and is
// verified; a corrupted LFS blob is caught (hub_integrity) and never cached under
// its true name; 500s are retried with backoff, then give hub_error; a malicious
// listing (`../evil`, `/etc/x`) is refused before anything is written.
import test from 'ava';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError } from '../core/errors.js';
import { pullModel } from '../experts/hub/pull.js';
import { HubEmulator } from './hub/emulator.js';
import { TINY_REPO, guardNetwork, startHubWithTinyModel, testContext, type TinyHub } from './hub/fixtures.js';

const net = guardNetwork();
let hub: TinyHub;

test.before(async () => {
  hub = await startHubWithTinyModel();
});
test.after.always(async () => {
  await hub?.emu.close();
});
test.after.always('no request left 127.0.0.1', (t) => {
  for (const url of net.urls) t.is(new URL(url).hostname, '127.0.0.1', url);
});

async function listAll(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).map(String).sort();
  } catch {
    return [];
  }
}

test.serial('a download cut mid-file resumes from where it stopped (Range) and is verified', async (t) => {
  const { ctx, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const weights = hub.files.get('model.safetensors')!;
  const cutAt = 200_000;
  hub.emu.cutAfter('model.safetensors', cutAt);
  hub.emu.clearLog();
  const progress: number[] = [];
  const r = await pullModel(TINY_REPO, ctx, { onProgress: (e) => e.file === 'model.safetensors' && progress.push(e.bytes) });
  t.deepEqual(await readFile(path.join(r.folder, 'model.safetensors')), weights);
  const gets = hub.emu.byteRequests('model.safetensors');
  // The second request asks for the rest: from what reached the disk before the cut.
  t.is(gets.length, 2);
  t.is(gets[0]!.range, 'bytes=0-');
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
  t.true(resumedAt > 0 && resumedAt <= cutAt, `resumed at ${resumedAt}`);
  t.is(gets[1]!.status, 206);
  t.is(progress.at(-1), weights.length);
  t.true(progress.some((b) => b <= cutAt));
});

test.serial('an .incomplete blob left by an interrupted run (ours or Python\'s) is resumed, not restarted', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const weights = hub.files.get('model.safetensors')!;
  const sha = hub.emu.fileInfo(TINY_REPO, 'model.safetensors')!.sha256;
  const blobs = path.join(cacheDir, 'models--tiny-org--llama-tiny', 'blobs');
  await mkdir(blobs, { recursive: true });
  await writeFile(path.join(blobs, `${sha}.incomplete`), weights.subarray(0, 123_456));
  hub.emu.clearLog();
  const r = await pullModel(TINY_REPO, ctx);
  t.deepEqual(hub.emu.byteRequests('model.safetensors').map((l) => l.range), ['bytes=123456-']);
  t.deepEqual(await readFile(path.join(r.folder, 'model.safetensors')), weights);
  t.deepEqual(await readFile(path.join(blobs, sha)), weights);
});

test.serial('a corrupted LFS file is detected (hub_integrity) and not left in the cache', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  hub.emu.corrupt('model.safetensors');
  t.teardown(() => hub.emu.clearFaults());
  const e = await t.throwsAsync(pullModel(TINY_REPO, ctx), { instanceOf: MoeforgeError });
  t.is(e.code, 'hub_integrity');
  t.is(e.path, 'model.safetensors');
  t.regex(e.message, /does not match the Hub's sha256/);
  const sha = hub.emu.fileInfo(TINY_REPO, 'model.safetensors')!.sha256;
  const blobs = await listAll(path.join(cacheDir, 'models--tiny-org--llama-tiny', 'blobs'));
  t.false(blobs.includes(sha));
  t.false(blobs.some((b) => b.startsWith(sha)), 'no .incomplete left either');
  t.false(blobs.some((b) => b.endsWith('.incomplete')));
  const snap = await listAll(path.join(cacheDir, 'models--tiny-org--llama-tiny', 'snapshots', hub.commits.main));
  t.false(snap.includes('model.safetensors'));
  // Once the Hub serves the right bytes, the same cache completes normally.
  hub.emu.clearFaults();
  const r = await pullModel(TINY_REPO, ctx);
  t.deepEqual(await readFile(path.join(r.folder, 'model.safetensors')), hub.files.get('model.safetensors'));
});

test.serial('500s are retried with backoff and then succeed', async (t) => {
  const { ctx, cleanup } = await testContext(hub.emu, { retries: 3 });
  t.teardown(cleanup);
  hub.emu.fail500(2, /\/api\/models\/tiny-org\/llama-tiny\/revision\//);
  hub.emu.fail500(3, /\/resolve\/.*\/config\.json$/);
  hub.emu.clearLog();
  const r = await pullModel(TINY_REPO, ctx, { includeWeights: false });
  t.is(r.commit, hub.commits.main);
  const rev = hub.emu.log.filter((l) => l.url.includes('/revision/')).map((l) => l.status);
  t.deepEqual(rev, [500, 500, 200]);
  const cfg = hub.emu.log.filter((l) => l.url.endsWith('/config.json')).map((l) => l.status);
  t.deepEqual(cfg, [500, 500, 500, 206]);
});

test.serial('after the retry limit a 500 is one hub_error line', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu, { retries: 2 });
  t.teardown(cleanup);
  hub.emu.fail500(3, /\/revision\//);
  hub.emu.clearLog();
  const e = await t.throwsAsync(pullModel(TINY_REPO, ctx), { instanceOf: MoeforgeError });
  t.is(e.code, 'hub_error');
  t.is(e.path, 'tiny-org/llama-tiny@main');
  t.regex(e.toLine(), /^error\[hub_error\]: tiny-org\/llama-tiny@main: the Hub answered 500: Internal Error \(injected\)$/);
  t.is(hub.emu.log.length, 3); // the first try and 2 retries
  t.deepEqual(await listAll(cacheDir), []);
});

test.serial('a connection refused is retried, then reported as hub_error', async (t) => {
  const dead = await HubEmulator.start();
  const url = dead.url;
  await dead.close();
  const { ctx, cleanup } = await testContext(hub.emu, { retries: 1 });
  t.teardown(cleanup);
  const e = await t.throwsAsync(pullModel(TINY_REPO, { ...ctx, endpoint: url }), { instanceOf: MoeforgeError });
  t.is(e.code, 'hub_error');
  t.regex(e.message, /^cannot reach the Hub/);
});

test.serial('a malicious listing with ../evil and /etc/x is refused and nothing is written', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const parent = path.dirname(cacheDir);
  const before = await listAll(parent);
  hub.emu.maliciousListing(TINY_REPO);
  t.teardown(() => hub.emu.clearFaults());
  hub.emu.clearLog();
  const e = await t.throwsAsync(pullModel(TINY_REPO, ctx), { instanceOf: MoeforgeError });
  t.is(e.code, 'unsafe_path');
  t.regex(e.toLine(), /^error\[unsafe_path\]: tiny-org\/llama-tiny: the Hub listing names a file outside the repository: "\.\.\/evil"$/);
  t.deepEqual(await listAll(parent), before); // not even the cache folder was created
  t.false(hub.emu.log.some((l) => l.file !== undefined));
  await t.throwsAsync(stat(path.join(cacheDir, '..', 'evil')));
  await t.throwsAsync(stat('/etc/x'));
});
