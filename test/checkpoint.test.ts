import test from 'ava';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, stat, writeFile, access } from 'node:fs/promises';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { CheckpointWriter, planShards } from '../core/checkpoint/writer.js';
import { parseByteSize, withAtomicFolder } from '../core/fs/atomic.js';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { MoeforgeError } from '../core/errors.js';
import { GOLDEN_MODELS, REPO_ROOT, golden, tempDir } from './helpers/paths.js';

/** Bit-for-bit equality of two buffers or typed arrays (ava's deepEqual is slow on large arrays). */
function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

const gone = async (p: string) => access(p).then(() => false, () => true);

test('every golden folder opens; tensors, headers and bytes match the file', async (t) => {
  for (const m of GOLDEN_MODELS) {
    const ck = await Checkpoint.open(golden(m));
    const file = path.join(golden(m), 'model.safetensors');
    const r = await SafetensorsReader.open(file);
    t.deepEqual(ck.files, ['model.safetensors']);
    t.is(ck.totalBytes, (await stat(file)).size);
    t.deepEqual(ck.names(), [...r.tensors.keys()]);
    t.is(typeof ck.rawConfig['model_type'], 'string');
    const name = ck.names()[3]!;
    t.deepEqual(ck.header(name), { ...r.header(name), file: 'model.safetensors' });
    t.true(sameBits(await ck.readFloat32(name), await r.readFloat32(name)));
    t.deepEqual(ck.headers().get(name), { dtype: r.header(name).dtype, shape: r.header(name).shape });
    await Promise.all([ck.close(), r.close()]);
  }
});

test('a missing tensor is missing_tensor naming it', async (t) => {
  const ck = await Checkpoint.open(golden('qwen2-tiny'));
  t.teardown(() => ck.close());
  t.false(ck.has('lm_head.weight')); // tied embeddings: qwen2-tiny has none
  const e = t.throws(() => ck.header('lm_head.weight'), { instanceOf: MoeforgeError });
  t.is(e?.code, 'missing_tensor');
  t.is(e?.path, 'lm_head.weight');
  const e2 = await t.throwsAsync(ck.readRaw('lm_head.weight'), { instanceOf: MoeforgeError });
  t.is(e2?.code, 'missing_tensor');
});

test('shard planning: greedy in plan order, an oversized tensor alone, transformers file names', (t) => {
  const spec = (name: string, bytes: number) => ({ name, dtype: 'U8' as const, shape: [bytes] });
  const shards = planShards([spec('a', 30), spec('b', 20), spec('c', 50), spec('d', 100), spec('e', 5), spec('f', 5)], 60);
  t.deepEqual(
    shards.map((s) => [s.file, s.tensors.map((x) => x.name).join(''), s.bytes]),
    [
      ['model-00001-of-00004.safetensors', 'ab', 50],
      ['model-00002-of-00004.safetensors', 'c', 50],
      ['model-00003-of-00004.safetensors', 'd', 100],
      ['model-00004-of-00004.safetensors', 'ef', 10],
    ],
  );
  t.deepEqual(planShards([spec('a', 30)], 60).map((s) => s.file), ['model.safetensors']);
  t.throws(() => planShards([spec('a', 1)], 0), { message: /not a positive number/ });
});

test('sharded write → reopen: same tensors, index total_size and weight_map right, shards within the limit', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const src = await Checkpoint.open(golden('mixtral-tiny'));
  t.teardown(() => src.close());
  const names = src.names();
  const plan = names.map((n) => ({ name: n, ...src.headers().get(n)! }));
  const shardSize = 100_000;
  const out = path.join(dir, 'out');
  const w = await CheckpointWriter.create(out, plan, { shardSizeBytes: shardSize });
  t.is(w.totalBytes, plan.reduce((s, p) => s + src.header(p.name).end - src.header(p.name).begin, 0));
  for (const [i, n] of names.entries()) {
    const bytes = await src.readRaw(n);
    if (i % 2 === 0) {
      await w.writeTensor(n, bytes);
    } else {
      // Streamed in uneven chunks.
      await w.writeTensor(
        n,
        (async function* () {
          for (let at = 0; at < bytes.length; at += 3001) yield bytes.subarray(at, at + 3001);
        })(),
      );
    }
  }
  t.is(w.bytesWritten, w.totalBytes);
  await copyFile(path.join(golden('mixtral-tiny'), 'config.json'), path.join(w.tempFolder, 'config.json'));
  t.true(await gone(out), 'nothing at the destination before finish');
  await w.finish();
  t.true(await gone(w.tempFolder));

  const files = (await readdir(out)).sort();
  const n = w.shards.length;
  t.true(n > 3);
  const shardFiles = Array.from({ length: n }, (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  t.deepEqual(files, ['config.json', ...shardFiles, 'model.safetensors.index.json'].sort());

  const indexText = await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8');
  const index = JSON.parse(indexText) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  t.is(index.metadata.total_size, w.totalBytes);
  t.deepEqual(Object.keys(index.weight_map), [...names].sort());
  t.true(indexText.endsWith('}\n') && indexText.startsWith('{\n  "metadata": {\n    "total_size": '));

  let dataTotal = 0;
  for (const f of shardFiles) {
    const r = await SafetensorsReader.open(path.join(out, f));
    const bytes = r.fileSize - r.dataStart;
    t.true(bytes <= shardSize || r.tensors.size === 1, `${f} holds ${bytes} bytes`);
    t.deepEqual(r.metadata, { format: 'pt' });
    for (const name of r.tensors.keys()) t.is(index.weight_map[name], f);
    dataTotal += bytes;
    await r.close();
  }
  t.is(dataTotal, index.metadata.total_size);

  const back = await Checkpoint.open(out);
  t.teardown(() => back.close());
  t.deepEqual(back.names(), [...names].sort());
  t.deepEqual(back.rawConfig, src.rawConfig);
  for (const name of names) t.true(sameBits(await back.readRaw(name), await src.readRaw(name)), name);
  t.true(sameBits(await back.readFloat32Range(names[5]!, 10, 20), (await src.readFloat32(names[5]!)).subarray(10, 20)));
});

test('one shard: model.safetensors and no index, byte-identical to the golden', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const src = await Checkpoint.open(golden('llama-tiny-bf16'));
  t.teardown(() => src.close());
  const plan = src.names().map((n) => ({ name: n, ...src.headers().get(n)! }));
  const out = path.join(dir, 'one');
  const w = await CheckpointWriter.create(out, plan, { shardSizeBytes: parseByteSize('5GB') });
  for (const p of plan) await w.writeTensor(p.name, await src.readRaw(p.name));
  await w.finish();
  t.deepEqual(await readdir(out), ['model.safetensors']);
  t.true(sameBits(await readFile(path.join(out, 'model.safetensors')), await readFile(path.join(golden('llama-tiny-bf16'), 'model.safetensors'))));
});

test('writer misuse: out of plan order, wrong byte count, unfinished plan; abort leaves nothing', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const out = path.join(dir, 'bad');
  const plan = [
    { name: 'a', dtype: 'F32' as const, shape: [2] },
    { name: 'b', dtype: 'F32' as const, shape: [2] },
  ];
  const w = await CheckpointWriter.create(out, plan, { shardSizeBytes: 1000 });
  await t.throwsAsync(w.writeTensor('b', new Uint8Array(8)), { message: /out of plan order: expected a/ });
  const e = await t.throwsAsync(w.writeTensor('a', new Uint8Array(12)), { instanceOf: MoeforgeError });
  t.is(e?.code, 'shape_mismatch');
  await w.abort();
  t.true(await gone(out));
  t.true(await gone(w.tempFolder));

  const w2 = await CheckpointWriter.create(out, plan, { shardSizeBytes: 1000 });
  await w2.writeTensor('a', new Uint8Array(8));
  await t.throwsAsync(w2.finish(), { message: /only 1 of 2 planned tensors/ });
  t.true(await gone(out));
  t.true(await gone(w2.tempFolder));
  t.deepEqual(await readdir(dir), []);
});

test('withAtomicFolder: renamed on success; an error inside leaves no output and no temp folder', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const out = path.join(dir, 'model');
  let seenTmp = '';
  const e = await t.throwsAsync(
    withAtomicFolder(out, async (tmp) => {
      seenTmp = tmp;
      t.is(path.dirname(tmp), dir);
      await writeFile(path.join(tmp, 'half.safetensors'), 'x');
      throw new Error('boom');
    }),
  );
  t.is(e?.message, 'boom');
  t.true(await gone(out));
  t.true(await gone(seenTmp));
  t.deepEqual(await readdir(dir), []);

  const r = await withAtomicFolder(out, async (tmp) => {
    await writeFile(path.join(tmp, 'a.txt'), 'one');
    return 42;
  });
  t.is(r, 42);
  t.is(await readFile(path.join(out, 'a.txt'), 'utf8'), 'one');

  const exists = await t.throwsAsync(withAtomicFolder(out, async () => 0), { instanceOf: MoeforgeError });
  t.is(exists?.code, 'invalid_argument');
  t.regex(exists!.message, /already exists/);
  await withAtomicFolder(out, (tmp) => writeFile(path.join(tmp, 'b.txt'), 'two'), { overwrite: true });
  t.deepEqual(await readdir(out), ['b.txt']);
  t.deepEqual(await readdir(dir), ['model']);
});

test('SIGINT during a write removes the temporary folder and leaves no output', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const out = path.join(dir, 'model');
  const script = `
    import { withAtomicFolder } from ${JSON.stringify(path.join(REPO_ROOT, 'core/fs/atomic.ts'))};
    import { writeFileSync } from 'node:fs';
    await withAtomicFolder(${JSON.stringify(out)}, async (tmp) => {
      writeFileSync(tmp + '/partial.safetensors', 'x');
      console.log(tmp);
      await new Promise((r) => setTimeout(r, 30000));
    });`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tmp = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve(buf.trim());
    });
    child.on('exit', () => reject(new Error('child exited early')));
  });
  t.false(await gone(tmp));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.kill('SIGINT');
  t.is(await exited, 'SIGINT');
  t.true(await gone(tmp));
  t.true(await gone(out));
});

test('folders: pickle-only is unsupported_format, no config.json or no weights is missing_file, bad index entries', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const pickle = path.join(dir, 'pickle');
  await mkdir(pickle);
  await writeFile(path.join(pickle, 'pytorch_model.bin'), 'PK');
  const e = await t.throwsAsync(Checkpoint.open(pickle), { instanceOf: MoeforgeError });
  t.is(e?.code, 'unsupported_format');
  t.regex(e!.message, /loading pickles runs arbitrary code/);
  t.is(e?.path, pickle);

  await writeFile(path.join(pickle, 'config.json'), '{}');
  t.is((await t.throwsAsync(Checkpoint.open(pickle), { instanceOf: MoeforgeError }))?.code, 'unsupported_format');

  const noConfig = path.join(dir, 'noconfig');
  await mkdir(noConfig);
  await copyFile(path.join(golden('llama-tiny'), 'model.safetensors'), path.join(noConfig, 'model.safetensors'));
  const c = await t.throwsAsync(Checkpoint.open(noConfig), { instanceOf: MoeforgeError });
  t.is(c?.code, 'missing_file');
  t.is(c?.path, path.join(noConfig, 'config.json'));

  const empty = path.join(dir, 'empty');
  await mkdir(empty);
  await writeFile(path.join(empty, 'config.json'), '{}');
  t.regex((await t.throwsAsync(Checkpoint.open(empty), { instanceOf: MoeforgeError }))!.message, /no model\.safetensors/);
  t.is((await t.throwsAsync(Checkpoint.open(path.join(dir, 'nope')), { instanceOf: MoeforgeError }))?.code, 'missing_file');

  // An index naming a tensor its shard lacks, and one naming a file outside the folder.
  const idx = path.join(dir, 'idx');
  await mkdir(idx);
  await copyFile(path.join(golden('llama-tiny'), 'config.json'), path.join(idx, 'config.json'));
  await copyFile(path.join(golden('llama-tiny'), 'model.safetensors'), path.join(idx, 'model-00001-of-00001.safetensors'));
  const indexFile = path.join(idx, 'model.safetensors.index.json');
  await writeFile(indexFile, JSON.stringify({ metadata: {}, weight_map: { 'model.norm.weight': 'model-00001-of-00001.safetensors', 'x.weight': 'model-00001-of-00001.safetensors' } }));
  const m = await t.throwsAsync(Checkpoint.open(idx), { instanceOf: MoeforgeError });
  t.is(m?.code, 'missing_tensor');
  t.is(m?.path, 'x.weight');
  await writeFile(indexFile, JSON.stringify({ weight_map: { 'model.norm.weight': '../../etc/passwd' } }));
  t.is((await t.throwsAsync(Checkpoint.open(idx), { instanceOf: MoeforgeError }))?.code, 'unsafe_path');
  await writeFile(indexFile, JSON.stringify({ weight_map: { 'model.norm.weight': 'model-00001-of-00001.safetensors' } }));
  const ok = await Checkpoint.open(idx);
  t.deepEqual(ok.names(), ['model.norm.weight']);
  t.deepEqual(ok.files, ['model-00001-of-00001.safetensors']);
  await ok.close();
  // With both present, model.safetensors wins, as in transformers' from_pretrained.
  await copyFile(path.join(golden('qwen2-tiny'), 'model.safetensors'), path.join(idx, 'model.safetensors'));
  const both = await Checkpoint.open(idx);
  t.deepEqual(both.files, ['model.safetensors']);
  t.true(both.has('model.layers.0.self_attn.q_proj.bias'));
  await both.close();
});

test('parseByteSize: decimal and binary units, plain bytes, errors', (t) => {
  t.is(parseByteSize('2GB'), 2e9);
  t.is(parseByteSize('500MB'), 5e8);
  t.is(parseByteSize('5GiB'), 5 * 2 ** 30);
  t.is(parseByteSize('1000000'), 1e6);
  t.is(parseByteSize('1.5gb'), 1.5e9);
  t.is(parseByteSize(' 10 KiB '), 10240);
  t.is(parseByteSize('100B'), 100);
  for (const bad of ['', 'GB', '-1GB', '5XB', '0', '1e9']) {
    const e = t.throws(() => parseByteSize(bad), { instanceOf: MoeforgeError });
    t.is(e?.code, 'invalid_argument');
  }
});
