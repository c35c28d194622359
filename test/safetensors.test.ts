import test from 'ava';
import path from 'node:path';
import { readFile, writeFile, stat, access } from 'node:fs/promises';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { SafetensorsWriter, encodeHeader, writeSafetensors } from '../core/safetensors/writer.js';
import { MoeforgeError } from '../core/errors.js';
import { GOLDEN_MODELS, golden, tempDir } from './helpers/paths.js';

/** Bit-for-bit equality of two buffers or typed arrays (ava's deepEqual is slow on large arrays). */
function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

const GOLDEN_FILES = GOLDEN_MODELS.flatMap((m) => [
  path.join(golden(m), 'model.safetensors'),
  path.join(golden(m), 'expected.safetensors'),
]);

/** Little-endian header length + JSON text, as a file's bytes (data appended). */
function fileOf(json: string, data: Uint8Array = new Uint8Array()): Uint8Array {
  const body = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + body.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  out.set(data, 8 + body.length);
  return out;
}

async function openBytes(dir: string, bytes: Uint8Array, name = 'x.safetensors'): Promise<SafetensorsReader> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return SafetensorsReader.open(file);
}

test('every golden .safetensors file read and written back is byte-identical', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  t.is(GOLDEN_FILES.length, 16);
  for (const [i, file] of GOLDEN_FILES.entries()) {
    const r = await SafetensorsReader.open(file);
    const specs = [...r.tensors.values()];
    // These files list the header in data order, so the spec order reproduces both.
    t.deepEqual(
      r.headerKeyOrder.filter((k) => k !== '__metadata__'),
      specs.map((s) => s.name),
    );
    const tensors = await Promise.all(
      specs.map(async (s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, data: await r.readRaw(s.name) })),
    );
    await r.close();
    const out = path.join(dir, `${i}.safetensors`);
    await writeSafetensors(out, tensors, r.metadata);
    t.true(sameBits(await readFile(out), await readFile(file)), file);
  }
});

test('streaming writes in arbitrary chunks give the same bytes as one write per tensor', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const src = path.join(golden('mixtral-tiny'), 'model.safetensors');
  const r = await SafetensorsReader.open(src);
  t.teardown(() => r.close());
  const specs = [...r.tensors.values()].map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  const all = (await readFile(src)).subarray(r.dataStart);
  const out = path.join(dir, 'chunked.safetensors');
  const w = await SafetensorsWriter.create(out, specs, r.metadata);
  // Chunk sizes that split and join tensors: 1 byte, primes, and one chunk bigger than the staging buffer's quarter.
  const sizes = [1, 7, 4093, 1 << 20, 13, 65537];
  let at = 0;
  for (let i = 0; at < all.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, all.length - at);
    await w.write(all.subarray(at, at + n));
    at += n;
  }
  t.is(w.bytesWritten, all.length);
  await w.close();
  t.true(sameBits(await readFile(out), await readFile(src)));
});

test('reads by tensor, byte range and element range; typed values in the native dtype', async (t) => {
  const r = await SafetensorsReader.open(path.join(golden('llama-tiny'), 'expected.safetensors'));
  t.teardown(() => r.close());
  t.is(r.metadata['fixture'], 'llama-tiny');
  const ids = await r.readTyped('input_ids');
  t.true(ids instanceof Int32Array);
  t.deepEqual([...ids].slice(0, 12), [1, 15, 42, 7, 99, 42, 63, 127, 8, 42, 23, 77]);
  t.deepEqual([...(await r.readFloat32Range('input_ids', 12, 15))], [0, 88, 3]);
  const h = r.header('logits');
  t.deepEqual(h.shape, [2, 12, 128]);
  t.is(h.numel, 3072);
  const logits = await r.readFloat32('logits');
  t.true(sameBits(await r.readFloat32Range('logits', 100, 300), logits.subarray(100, 300)));
  const raw = await r.readRaw('logits');
  t.deepEqual(await r.readRawRange('logits', 8, 20), raw.subarray(8, 20));
  const into = new Uint8Array(16);
  t.is(await r.readRawInto('logits', into, 40), into);
  t.deepEqual(into, raw.subarray(40, 56));
  await t.throwsAsync(r.readRawInto('logits', into, raw.length - 8), { instanceOf: RangeError });
  await t.throwsAsync(r.readFloat32Range('logits', 0, 3073), { instanceOf: RangeError });
  const e = await t.throwsAsync(r.readRaw('nope'), { instanceOf: MoeforgeError });
  t.is(e?.code, 'missing_tensor');
  t.is(e?.path, 'nope');
});

test('a file cut short by one byte is corrupt at open, before any read', async (t) => {
  // Truncation below the declared data section is a corrupt file, caught before any read.
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const bytes = await readFile(path.join(golden('qwen2-tiny'), 'model.safetensors'));
  const e = await t.throwsAsync(openBytes(dir, bytes.subarray(0, bytes.length - 1)), { instanceOf: MoeforgeError });
  t.is(e?.code, 'corrupt_safetensors');
  t.regex(e!.message, /past the 404735-byte data section/);
  t.regex(e!.path!, /x\.safetensors$/);
});

test('encodeHeader pads with spaces to a multiple of 8, metadata first, spec order kept (even numeric names)', (t) => {
  const h = encodeHeader(
    [
      { name: '10', dtype: 'F32', shape: [2] },
      { name: '2', dtype: 'BF16', shape: [3, 1] },
    ],
    { format: 'pt' },
  );
  const n = Number(new DataView(h.buffer).getBigUint64(0, true));
  t.is(n % 8, 0);
  t.is(h.length, 8 + n);
  const text = Buffer.from(h.subarray(8)).toString('utf8');
  t.is(
    text.trimEnd(),
    '{"__metadata__":{"format":"pt"},"10":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"2":{"dtype":"BF16","shape":[3,1],"data_offsets":[8,14]}}',
  );
  t.regex(text, /^[^ ]+ *$/);
  t.throws(() => encodeHeader([{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }]), {
    message: /twice/,
  });
  t.throws(() => encodeHeader([{ name: 'a', dtype: 'F33' as 'F32', shape: [1] }]), { message: /unknown dtype/ });
});

test('the writer refuses more bytes than declared, and removes a file that got fewer', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const file = path.join(dir, 'short.safetensors');
  const w = await SafetensorsWriter.create(file, [{ name: 'a', dtype: 'F32', shape: [4] }]);
  await w.write(new Uint8Array(12));
  const e = await t.throwsAsync(w.close(), { instanceOf: MoeforgeError });
  t.regex(e!.message, /12 data bytes were written but the header declares 16/);
  await t.throwsAsync(access(file));

  const w2 = await SafetensorsWriter.create(file, [{ name: 'a', dtype: 'F32', shape: [1] }]);
  await t.throwsAsync(w2.write(new Uint8Array(5)), { message: /exceed the 4 data bytes/ });
  await w2.abort();
  await t.throwsAsync(access(file));

  await t.throwsAsync(writeSafetensors(file, [{ name: 'a', dtype: 'F16', shape: [3], data: new Uint8Array(4) }]), {
    message: /needs 6/,
  });
});

test('empty tensors, zero-size shapes and scalars round-trip', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const file = path.join(dir, 'odd.safetensors');
  await writeSafetensors(file, [
    { name: 'scalar', dtype: 'F64', shape: [], data: new Uint8Array(new Float64Array([2.5]).buffer) },
    { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array() },
    { name: 'flags', dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
  ]);
  const r = await SafetensorsReader.open(file);
  t.teardown(() => r.close());
  t.deepEqual(r.metadata, {});
  t.deepEqual([...((await r.readTyped('scalar')) as Float64Array)], [2.5]);
  t.is((await r.readRaw('empty')).length, 0);
  t.is(r.header('empty').numel, 0);
  t.deepEqual([...(await r.readFloat32('flags'))], [1, 0, 1]);
  t.is((await stat(file)).size, r.dataStart + 8 + 3);
});

// One case per validation rule: every one is corrupt_safetensors naming the file and saying why.
const ONE_F32 = '"dtype":"F32","shape":[1],"data_offsets":[0,4]';
const RULES: [string, Uint8Array, RegExp][] = [
  ['shorter than 8 bytes', Uint8Array.from([1, 2, 3]), /shorter than the 8-byte/],
  ['header length past the end', (() => { const b = fileOf(`{"a":{${ONE_F32}}}`, new Uint8Array(4)); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; })(), /runs past the end/],
  ['header length 2^64-1', (() => { const b = fileOf('{}'); new DataView(b.buffer).setBigUint64(0, 0xffffffffffffffffn, true); return b; })(), /exceeds the 100 MB limit/],
  ['not UTF-8', fileOf('{"x":1}').map((v, i) => (i === 10 ? 0xff : v)), /not valid UTF-8/],
  ['not JSON', fileOf('{"a":'), /not valid JSON/],
  ['not an object', fileOf('[1,2]   '), /not a JSON object/],
  ['unknown dtype', fileOf(`{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)), /unknown dtype "F12"/],
  ['extra field', fileOf(`{"a":{${ONE_F32},"x":1}}`, new Uint8Array(4)), /unknown field "x"/],
  ['missing shape', fileOf(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, new Uint8Array(4)), /shape is missing/],
  ['negative dim', fileOf(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, new Uint8Array(4)), /non-negative integer/],
  ['fractional dim', fileOf(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, new Uint8Array(4)), /non-negative integer/],
  ['huge shape', fileOf(`{"a":{"dtype":"F32","shape":[9007199254740991,9007199254740991],"data_offsets":[0,4]}}`, new Uint8Array(4)), /too many elements/],
  ['offsets not a pair', fileOf(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, new Uint8Array(4)), /not a pair/],
  ['begin > end', fileOf(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, new Uint8Array(4)), /begin <= end/],
  ['size mismatch', fileOf(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)), /needs 2/],
  ['past the data section', fileOf(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, new Uint8Array(4)), /past the 4-byte data section/],
  ['huge end offset', fileOf(`{"a":{"dtype":"U8","shape":[9007199254740991],"data_offsets":[0,9007199254740991]}}`, new Uint8Array(4)), /past the 4-byte data section/],
  ['gap', fileOf(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, new Uint8Array(8)), /gap after byte 0/],
  ['overlap', fileOf(`{"a":{${ONE_F32}},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, new Uint8Array(8)), /overlap/],
  ['trailing data', fileOf(`{"a":{${ONE_F32}}}`, new Uint8Array(5)), /cover 4 bytes but the data section holds 5/],
  ['metadata not strings', fileOf(`{"__metadata__":{"n":1},"a":{${ONE_F32}}}`, new Uint8Array(4)), /__metadata__\.n is 1, not a string/],
  ['metadata not an object', fileOf(`{"__metadata__":"x","a":{${ONE_F32}}}`, new Uint8Array(4)), /__metadata__ is not an object/],
];

for (const [rule, bytes, message] of RULES) {
  test(`corrupt: ${rule}`, async (t) => {
    const { dir, cleanup } = await tempDir();
    t.teardown(cleanup);
    const e = await t.throwsAsync(openBytes(dir, bytes), { instanceOf: MoeforgeError });
    t.is(e?.code, 'corrupt_safetensors');
    t.regex(e!.message, message);
    t.is(e?.path, path.join(dir, 'x.safetensors'));
    t.regex(e!.toLine(), /^error\[corrupt_safetensors\]: .*x\.safetensors: /);
  });
}

test('a valid hand-made file with gaps-free out-of-order header keys reads by offsets', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
  const r = await openBytes(
    dir,
    fileOf(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{${ONE_F32}}}  `, data),
  );
  t.teardown(() => r.close());
  t.deepEqual([...r.tensors.keys()], ['a', 'b']);
  t.deepEqual(r.headerKeyOrder, ['b', 'a']);
  t.deepEqual([...(await r.readFloat32('b'))], [2, 3]);
});

test('a missing file is missing_file, a directory is io_error', async (t) => {
  const e = await t.throwsAsync(SafetensorsReader.open('/nonexistent/m.safetensors'), { instanceOf: MoeforgeError });
  t.is(e?.code, 'missing_file');
  const d = await t.throwsAsync(SafetensorsReader.open(golden('llama-tiny')), { instanceOf: MoeforgeError });
  t.is(d?.code, 'io_error');
  t.regex(d!.message, /is a directory/);
});
