// Pulling from the Hub (emulated on 127.0.0.1) with the real @huggingface/hub client:
// by name, branch, tag and commit; the standard cache layout; a second pull served
// from the cache with no request at all; HF_HUB_OFFLINE; describe() from headers only.
import test from 'ava';
import { downloadFileToCacheDir, scanCacheDir } from '@huggingface/hub';
import { lstat, mkdir, readFile, readlink, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError } from '../core/errors.js';
import { describeHubModel } from '../experts/hub/describe.js';
import { hubContext } from '../experts/hub/context.js';
import { pullModel } from '../experts/hub/pull.js';
import { HubSource } from '../experts/sources/hub.js';
import { SHARDED_REPO, TINY_REPO, guardNetwork, startHubWithTinyModel, testContext, type TinyHub } from './hub/fixtures.js';

const net = guardNetwork();
let hub: TinyHub;

test.before(async () => {
  hub = await startHubWithTinyModel();
});
test.after.always(async () => {
  await hub?.emu.close();
});
test.after.always('no request left 127.0.0.1', (t) => {
  t.true(net.urls.length > 0);
  for (const url of net.urls) t.is(new URL(url).hostname, '127.0.0.1', url);
});

const NEEDED = ['added_tokens.json', 'chat_template.jinja', 'config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer_config.json'];

test.serial('pull by name: only the files a build needs, byte-identical, in the standard cache layout', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  hub.emu.clearLog();
  const r = await pullModel(TINY_REPO, ctx);
  t.is(r.commit, hub.commits.main);
  t.false(r.fromCache);
  t.deepEqual(r.files, NEEDED);
  const repoDir = path.join(cacheDir, 'models--tiny-org--llama-tiny');
  t.is(r.folder, path.join(repoDir, 'snapshots', hub.commits.main));
  t.deepEqual((await readdir(r.folder)).sort(), NEEDED);
  // refs/main holds the commit with no newline, as huggingface_hub writes it.
  t.is(await readFile(path.join(repoDir, 'refs', 'main'), 'utf8'), hub.commits.main);
  for (const name of NEEDED) {
    const served = hub.emu.files(TINY_REPO).get(name)!;
    t.deepEqual(await readFile(path.join(r.folder, name)), served, name);
    // Relative symlink into blobs/, named by sha256 for LFS files and git sha1 otherwise.
    const link = path.join(r.folder, name);
    t.true((await lstat(link)).isSymbolicLink(), name);
    const info = hub.emu.fileInfo(TINY_REPO, name)!;
    t.is(await readlink(link), `../../blobs/${info.lfs ? info.sha256 : info.gitOid}`, name);
  }
  t.true(hub.emu.fileInfo(TINY_REPO, 'model.safetensors')!.lfs);
  // Nothing else was asked for: no pickle, no README, no nested onnx/.
  const resolved = hub.emu.log.filter((l) => l.bytes).map((l) => l.file);
  // The empty added_tokens.json needs no request at all (a Range on it would be a 416).
  t.deepEqual(resolved.sort(), NEEDED.filter((n) => n !== 'added_tokens.json'));
  t.is((await readFile(path.join(r.folder, 'added_tokens.json'))).length, 0);
  t.false((await readdir(path.join(repoDir, 'blobs'))).some((b) => b.endsWith('.incomplete')));
});

test.serial('pull by branch, tag and commit resolves each to its own commit', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const dev = await pullModel(`${TINY_REPO}@dev`, ctx, { includeWeights: false });
  const tag = await pullModel(`${TINY_REPO}@v1`, ctx, { includeWeights: false });
  const byCommit = await pullModel(`${TINY_REPO}@${hub.commits.v1}`, ctx, { includeWeights: false });
  t.is(dev.commit, hub.commits.dev);
  t.is(tag.commit, hub.commits.v1);
  t.is(byCommit.commit, hub.commits.v1);
  t.not(hub.commits.dev, hub.commits.v1);
  const gen = async (r: { folder: string }) => JSON.parse(await readFile(path.join(r.folder, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
  t.is((await gen(dev)).dev, true);
  t.is((await gen(tag)).dev, undefined);
  t.false(dev.files.includes('model.safetensors')); // --include-weights not given
  const refs = path.join(cacheDir, 'models--tiny-org--llama-tiny', 'refs');
  t.deepEqual((await readdir(refs)).sort(), ['dev', 'v1']); // a commit hash gets no ref
  t.is(await readFile(path.join(refs, 'v1'), 'utf8'), hub.commits.v1);
  // @huggingface/hub's cache scanner (a port of Python's scan_cache_dir) reads our layout.
  const scan = await scanCacheDir(cacheDir);
  t.deepEqual(scan.warnings, []);
  t.deepEqual(scan.repos.map((r) => r.id.name), [TINY_REPO]);
  const revs = new Map(scan.repos[0]!.revisions.map((r) => [r.commitOid, r]));
  t.deepEqual(revs.get(hub.commits.v1)?.refs, ['v1']);
  t.deepEqual(revs.get(hub.commits.dev)?.refs, ['dev']);
  t.true(revs.get(hub.commits.v1)!.files.some((f) => f.path.endsWith('config.json') && f.blob.size === hub.files.get('config.json')!.length));
});

test.serial('a second pull is served from the cache with zero requests, and so is HF_HUB_OFFLINE=1', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const first = await pullModel(`${TINY_REPO}@v1`, ctx);
  hub.emu.clearLog();
  const second = await pullModel(`${TINY_REPO}@v1`, ctx);
  t.is(hub.emu.log.length, 0);
  t.true(second.fromCache);
  t.is(second.folder, first.folder);
  t.deepEqual(second.files, NEEDED);
  const offline = hubContext({ env: {}, endpoint: hub.emu.url, cacheDir, offline: true });
  const third = await pullModel(`${TINY_REPO}@v1`, offline);
  t.is(third.folder, first.folder);
  t.is(hub.emu.log.length, 0);
  // --refresh asks the Hub where the branch points, but fetches no file again.
  const refreshed = await pullModel(`${TINY_REPO}@v1`, ctx, { refresh: true });
  t.is(refreshed.commit, hub.commits.v1);
  t.false(hub.emu.log.some((l) => l.file !== undefined));
});

test.serial('HF_HUB_OFFLINE=1 names what the cache lacks', async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const offline = hubContext({ env: { HF_HUB_OFFLINE: '1' }, endpoint: hub.emu.url, cacheDir });
  t.true(offline.offline);
  hub.emu.clearLog();
  const never = await t.throwsAsync(pullModel(TINY_REPO, offline), { instanceOf: MoeforgeError });
  t.is(never.code, 'hub_offline');
  t.regex(never.toLine(), /^error\[hub_offline\]: .*models--tiny-org--llama-tiny: HF_HUB_OFFLINE is set and revision main of tiny-org\/llama-tiny is not in the cache$/);
  // Config only in the cache; a build needs the weights: the line names the missing file.
  await pullModel(TINY_REPO, ctx, { includeWeights: false });
  hub.emu.clearLog();
  const partial = await t.throwsAsync(pullModel(TINY_REPO, offline), { instanceOf: MoeforgeError });
  t.is(partial.code, 'hub_offline');
  t.regex(partial.message, /lacks model\.safetensors of tiny-org\/llama-tiny@main/);
  t.true(partial.path!.endsWith(`${hub.commits.main}/model.safetensors`));
  t.is(hub.emu.log.length, 0);
});

test.serial("a snapshot Python's huggingface_hub left in the cache is reused without any request", async (t) => {
  const { ctx, cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  // Lay the cache out by hand exactly as huggingface_hub's hf_hub_download does.
  const repoDir = path.join(cacheDir, 'models--tiny-org--llama-tiny');
  const snap = path.join(repoDir, 'snapshots', hub.commits.v1);
  await mkdir(path.join(repoDir, 'blobs'), { recursive: true });
  await mkdir(path.join(repoDir, 'refs'), { recursive: true });
  await mkdir(snap, { recursive: true });
  await writeFile(path.join(repoDir, 'refs', 'main'), hub.commits.v1);
  for (const name of ['config.json', 'model.safetensors']) {
    const info = hub.emu.fileInfo(TINY_REPO, name, hub.commits.v1)!;
    const etag = info.lfs ? info.sha256 : info.gitOid;
    await writeFile(path.join(repoDir, 'blobs', etag), info.data);
    await symlink(`../../blobs/${etag}`, path.join(snap, name));
  }
  hub.emu.clearLog();
  const r = await pullModel(TINY_REPO, ctx);
  t.is(r.folder, snap);
  t.true(r.fromCache);
  t.is(hub.emu.log.length, 0);
});

test.serial('files the official JS client put in the cache (downloadFileToCacheDir) are reused', async (t) => {
  const { cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const debug = console.debug;
  console.debug = () => undefined; // the client announces each download on console.debug
  t.teardown(() => void (console.debug = debug));
  for (const name of ['config.json', 'model.safetensors']) {
    await downloadFileToCacheDir({ repo: TINY_REPO, path: name, revision: hub.commits.v1, hubUrl: hub.emu.url, cacheDir });
  }
  hub.emu.clearLog();
  const ctx = hubContext({ env: {}, endpoint: hub.emu.url, cacheDir });
  const r = await pullModel(`${TINY_REPO}@${hub.commits.v1}`, ctx);
  t.true(r.fromCache);
  t.is(hub.emu.log.length, 0);
  t.deepEqual(await readFile(path.join(r.folder, 'model.safetensors')), hub.files.get('model.safetensors'));
});

test.serial('a sharded repo fetches the index and exactly the shards it names', async (t) => {
  const { ctx, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const r = await pullModel(SHARDED_REPO, ctx);
  t.deepEqual(r.files, ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  // consolidated.safetensors (not in the index) was not fetched.
  t.deepEqual((await readdir(r.folder)).sort(), r.files);
});

test.serial('describe() reads config and remote safetensors headers with Range requests only', async (t) => {
  const { ctx, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  hub.emu.clearLog();
  const d = await describeHubModel(SHARDED_REPO, ctx);
  t.deepEqual([...d.tensors.keys()].sort(), ['lm_head.weight', 'model.embed_tokens.weight', 'model.norm.weight']);
  t.deepEqual(d.tensors.get('lm_head.weight'), { dtype: 'F32', shape: [4, 2] });
  t.is(d.config.model_type, 'llama');
  const shardSizes = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].map((n) => hub.emu.files(SHARDED_REPO).get(n)!.length);
  t.is(d.weightBytes, shardSizes[0]! + shardSizes[1]!);
  t.is(d.revision, hub.emu.head(SHARDED_REPO));
  const weightReqs = hub.emu.log.filter((l) => l.file?.endsWith('.safetensors') && l.bytes);
  t.true(weightReqs.length >= 4);
  // LFS resolves answer 302 to the CDN, as on the real Hub; the bytes come from there.
  t.true(hub.emu.log.some((l) => l.file?.endsWith('.safetensors') && l.status === 302));
  for (const l of weightReqs) {
    // Every request of a weight file is a bounded Range inside the header.
    const m = /^bytes=(\d+)-(\d+)$/.exec(l.range ?? '');
    t.truthy(m, `${l.url} ${l.range}`);
    const shard = hub.emu.files(SHARDED_REPO).get(l.file!)!;
    const headerEnd = 8 + Number(shard.readBigUInt64LE(0));
    t.true(Number(m![2]) < headerEnd, `${l.range} reads past the header (${headerEnd} bytes)`);
  }
});

test.serial('HubSource.describe of the golden model matches its real headers; cached snapshots are described offline', async (t) => {
  const { cacheDir, cleanup } = await testContext(hub.emu);
  t.teardown(cleanup);
  const source = new HubSource({ env: {}, endpoint: hub.emu.url, cacheDir, retry: { retries: 1, baseDelayMs: 5, maxDelayMs: 5 } });
  t.true(source.canResolve(TINY_REPO));
  t.true(source.canResolve(`${TINY_REPO}@v1`));
  t.false(source.canResolve('./models/x'));
  const remote = await source.describe(TINY_REPO);
  t.is(remote.tensors.get('model.embed_tokens.weight')?.shape.join('x'), '128x64');
  t.is(remote.weightBytes, hub.files.get('model.safetensors')!.length);
  const fetched = await source.fetch(TINY_REPO);
  t.is(fetched.revision, hub.commits.main);
  hub.emu.clearLog();
  const offline = new HubSource({ env: {}, endpoint: hub.emu.url, cacheDir, offline: true });
  const cached = await offline.describe(TINY_REPO);
  t.is(hub.emu.log.length, 0);
  t.deepEqual([...cached.tensors.entries()].sort(), [...remote.tensors.entries()].sort());
  t.is(cached.revision, hub.commits.main);
});
