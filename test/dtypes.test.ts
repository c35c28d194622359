import test from 'ava';
import path from 'node:path';
import {
  bf16BitsToF32,
  bitsToF32,
  decodeToFloat32,
  decodeTyped,
  dtypeToTorchDtype,
  encodeFloat32,
  f16BitsToF32,
  f32Bits,
  f32ToBf16Bits,
  f32ToF16Bits,
  isDtype,
  torchDtypeToDtype,
} from '../core/dtypes.js';
import { bf16Transposed } from '../core/model/weights.js';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { golden } from './helpers/paths.js';

/** Bit-for-bit equality of two buffers or typed arrays (ava's deepEqual is slow on large arrays). */
function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

const hex = (n: number) => `0x${n.toString(16)}`;

test('BF16: round-to-nearest-even, both tie directions, NaN, Inf, overflow, subnormals', (t) => {
  const cases: [number, number, string][] = [
    [0x3f800000, 0x3f80, '1.0 exact'],
    [0x3f808000, 0x3f80, 'tie, kept bit even: rounds down'],
    [0x3f818000, 0x3f82, 'tie, kept bit odd: rounds up'],
    [0x3f808001, 0x3f81, 'just above half: up'],
    [0x3f807fff, 0x3f80, 'just below half: down'],
    [0xbf818000, 0xbf82, 'negative tie rounds away to even'],
    [0x7f800000, 0x7f80, '+Inf'],
    [0xff800000, 0xff80, '-Inf'],
    [0x7fc00000, 0x7fc0, 'quiet NaN'],
    [0xffc00000, 0xffc0, 'negative NaN keeps its sign'],
    [0x7f800001, 0x7fc0, 'signalling NaN with payload only in the low bits stays NaN'],
    [0x7f7f7fff, 0x7f7f, 'max finite BF16 stays'],
    [0x7f7f8000, 0x7f80, 'tie above max finite (odd) overflows to Inf'],
    [0x7f7fffff, 0x7f80, 'max finite float32 overflows to Inf'],
    [0x00000000, 0x0000, '+0'],
    [0x80000000, 0x8000, '-0'],
    [0x00010000, 0x0001, 'smallest BF16 subnormal exact'],
    [0x00008000, 0x0000, 'half the smallest subnormal: tie to even 0'],
    [0x00018000, 0x0002, 'subnormal tie, odd: up'],
    [0x00000001, 0x0000, 'smallest float32 subnormal rounds to 0'],
    [0x007fffff, 0x0080, 'largest float32 subnormal rounds up to the smallest normal'],
  ];
  for (const [f32, want, why] of cases) t.is(hex(f32ToBf16Bits(bitsToF32(f32))), hex(want), why);
  t.is(bf16BitsToF32(0x0001), 2 ** -133);
  t.is(bf16BitsToF32(0xff80), -Infinity);
  t.true(Number.isNaN(bf16BitsToF32(0x7fc1)));
  t.is(bf16BitsToF32(0x7f7f), bitsToF32(0x7f7f0000));
});

test('BF16: every non-NaN bit pattern survives decode then encode', (t) => {
  let bad = 0;
  for (let b = 0; b < 65536; b++) {
    const x = bf16BitsToF32(b);
    if (Number.isNaN(x)) {
      if (!Number.isNaN(bf16BitsToF32(f32ToBf16Bits(x)))) bad++;
    } else if (f32ToBf16Bits(x) !== b) bad++;
  }
  t.is(bad, 0);
});

test('F16: round-to-nearest-even, both tie directions, NaN, Inf, overflow, max finite, subnormals', (t) => {
  const cases: [number, number, string][] = [
    [1, 0x3c00, '1.0'],
    [1 + 2 ** -11, 0x3c00, 'tie, kept bit even: down'],
    [1 + 3 * 2 ** -11, 0x3c02, 'tie, kept bit odd: up'],
    [1 + 2 ** -11 + 2 ** -23, 0x3c01, 'just above half: up'],
    [-(1 + 3 * 2 ** -11), 0xbc02, 'negative tie'],
    [65504, 0x7bff, 'max finite'],
    [65519.99609375, 0x7bff, 'largest float32 below the overflow threshold'],
    [65520, 0x7c00, 'tie at the top (odd) overflows to Inf'],
    [1e6, 0x7c00, 'overflow to +Inf'],
    [-1e6, 0xfc00, 'overflow to -Inf'],
    [Infinity, 0x7c00, '+Inf'],
    [-Infinity, 0xfc00, '-Inf'],
    [2 ** -24, 0x0001, 'smallest subnormal'],
    [2 ** -25, 0x0000, 'half the smallest subnormal: tie to even 0'],
    [2 ** -25 * (1 + 2 ** -23), 0x0001, 'just above that: up'],
    [3 * 2 ** -25, 0x0002, 'subnormal tie, odd: up'],
    [5 * 2 ** -25, 0x0002, 'subnormal tie, even: down'],
    [1023 * 2 ** -24, 0x03ff, 'largest subnormal'],
    [1023.5 * 2 ** -24, 0x0400, 'tie between largest subnormal and smallest normal: even'],
    [2 ** -14, 0x0400, 'smallest normal'],
    [1e-10, 0x0000, 'underflow to +0'],
    [-1e-10, 0x8000, 'underflow to -0'],
    [-0, 0x8000, '-0'],
  ];
  for (const [x, want, why] of cases) t.is(hex(f32ToF16Bits(x)), hex(want), why);
  t.is(hex(f32ToF16Bits(NaN)), '0x7e00');
  t.is(f32ToF16Bits(bitsToF32(0xffc00000)) & 0x8000, 0x8000, 'NaN sign kept');
  t.true(Number.isNaN(f16BitsToF32(f32ToF16Bits(bitsToF32(0x7f800001)))), 'signalling NaN stays NaN');
  t.is(f16BitsToF32(0x0001), 2 ** -24);
  t.is(f16BitsToF32(0x7bff), 65504);
  t.is(f16BitsToF32(0xfc00), -Infinity);
});

test('F16: every non-NaN bit pattern survives decode then encode', (t) => {
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    const x = f16BitsToF32(h);
    if (Number.isNaN(x) ? !Number.isNaN(f16BitsToF32(f32ToF16Bits(x))) : f32ToF16Bits(x) !== h) bad++;
  }
  t.is(bad, 0);
});

test('F16: random float32s round to the nearest half, ties to even (checked against the neighbours)', (t) => {
  // Independent check: the chosen half is at least as close as both neighbours, and on a tie it is even.
  let state = 12345;
  let bad = 0;
  for (let i = 0; i < 100_000; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    // Magnitudes around the half range (exponents 100..145), both signs.
    const bits = ((state & 0x80000000) | ((100 + (state % 46)) << 23) | (state & 0x7fffff)) >>> 0;
    const x = bitsToF32(bits);
    const h = f32ToF16Bits(x);
    const ax = Math.abs(x);
    const mag = h & 0x7fff;
    const err = (m: number) => Math.abs(ax - f16BitsToF32(m));
    if (mag === 0x7c00) {
      if (ax < 65520) bad++;
      continue;
    }
    const e = err(mag);
    const lower = mag > 0 ? err(mag - 1) : Infinity;
    const upper = mag < 0x7bff ? err(mag + 1) : Math.abs(ax - 65536);
    if (e > lower || e > upper) bad++;
    if ((e === lower || e === upper) && (mag & 1) === 1) bad++;
    if ((h & 0x8000) !== (bits & 0x80000000 ? 0x8000 : 0)) bad++;
  }
  t.is(bad, 0);
});

test('bulk encode/decode agree with the scalar conversions, including unaligned buffers', (t) => {
  const values = Float32Array.from([1, -2.5, 65520, 1e-8, NaN, -Infinity, 3.14159, 2 ** -24]);
  for (const dtype of ['F16', 'BF16'] as const) {
    const bytes = encodeFloat32(dtype, values);
    const u16 = new Uint16Array(bytes.buffer);
    const scalar = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
    t.deepEqual([...u16], [...values].map(scalar));
    const unaligned = new Uint8Array(bytes.byteLength + 1).subarray(1);
    unaligned.set(bytes);
    const back = decodeToFloat32(dtype, unaligned);
    const dec = dtype === 'F16' ? f16BitsToF32 : bf16BitsToF32;
    t.deepEqual([...back].map(f32Bits), [...u16].map((b) => f32Bits(dec(b))));
    const into = new Uint8Array(bytes.byteLength + 3);
    encodeFloat32(dtype, values, into.subarray(1));
    t.deepEqual([...into.subarray(1, 1 + bytes.byteLength)], [...bytes]);
  }
  t.deepEqual([...new Uint8Array(encodeFloat32('F32', values))], [...new Uint8Array(values.buffer)]);
});

test('F8 decode: E4M3 (fn: no Inf, S.1111.111 NaN) and E5M2 (IEEE-like)', (t) => {
  const e4m3 = decodeToFloat32('F8_E4M3', Uint8Array.from([0x00, 0x01, 0x07, 0x08, 0x38, 0xb8, 0x7e, 0x7f, 0xff, 0x78, 0x80]));
  t.deepEqual([...e4m3].slice(0, 7), [0, 2 ** -9, 7 * 2 ** -9, 2 ** -6, 1, -1, 448]);
  t.true(Number.isNaN(e4m3[7]!) && Number.isNaN(e4m3[8]!));
  t.is(e4m3[9], 256, '0x78 is finite (no Inf in e4m3fn)');
  t.true(Object.is(e4m3[10], -0));
  const e5m2 = decodeToFloat32('F8_E5M2', Uint8Array.from([0x3c, 0x7b, 0x7c, 0xfc, 0x7d, 0x01, 0xc0]));
  t.deepEqual([...e5m2].slice(0, 4), [1, 57344, Infinity, -Infinity]);
  t.true(Number.isNaN(e5m2[4]!));
  t.is(e5m2[5], 2 ** -16);
  t.is(e5m2[6], -2);
});

test('integer dtypes decode by value; typed reads keep the native type', (t) => {
  const i64 = new BigInt64Array([-3n, 1n << 40n]);
  t.deepEqual([...decodeToFloat32('I64', new Uint8Array(i64.buffer))], [-3, 2 ** 40]);
  t.deepEqual([...decodeToFloat32('I8', Uint8Array.from([0xff, 0x7f]))], [-1, 127]);
  t.deepEqual([...decodeToFloat32('U16', new Uint8Array(Uint16Array.from([65535]).buffer))], [65535]);
  t.deepEqual([...decodeToFloat32('BOOL', Uint8Array.from([0, 1]))], [0, 1]);
  const typed = decodeTyped('I32', new Uint8Array(Int32Array.from([-7, 9]).buffer));
  t.true(typed instanceof Int32Array);
  t.deepEqual([...(typed as Int32Array)], [-7, 9]);
  t.throws(() => decodeToFloat32('F32', new Uint8Array(6)), { instanceOf: RangeError });
});

test('dtype names: safetensors and torch spellings', (t) => {
  t.true(isDtype('F8_E4M3'));
  t.false(isDtype('f32'));
  t.false(isDtype('toString'));
  t.is(torchDtypeToDtype('bfloat16'), 'BF16');
  t.is(torchDtypeToDtype('torch.float16'), 'F16');
  t.is(torchDtypeToDtype('fp16'), 'F16');
  t.is(torchDtypeToDtype('bf16'), 'BF16');
  t.is(torchDtypeToDtype('float32'), 'F32');
  t.is(torchDtypeToDtype('int8'), undefined);
  t.is(torchDtypeToDtype('constructor'), undefined);
  t.is(dtypeToTorchDtype('BF16'), 'bfloat16');
  t.is(dtypeToTorchDtype('F16'), 'float16');
});

test('the BF16 golden is llama-tiny F32 rounded to nearest even, bit for bit', async (t) => {
  const f32 = await SafetensorsReader.open(path.join(golden('llama-tiny'), 'model.safetensors'));
  const bf16 = await SafetensorsReader.open(path.join(golden('llama-tiny-bf16'), 'model.safetensors'));
  t.teardown(() => Promise.all([f32.close(), bf16.close()]));
  t.deepEqual([...bf16.tensors.keys()], [...f32.tensors.keys()]);
  let checked = 0;
  for (const [name, h] of bf16.tensors) {
    t.is(h.dtype, 'BF16');
    const ref = await f32.readFloat32(name);
    const raw = await bf16.readRaw(name);
    t.true(sameBits(encodeFloat32('BF16', ref), raw), name);
    const decoded = await bf16.readFloat32(name);
    const rounded = Float32Array.from(ref, (x) => bf16BitsToF32(f32ToBf16Bits(x)));
    t.true(sameBits(decoded, rounded), name);
    checked += h.numel;
  }
  t.true(checked > 50_000);
});

test('bf16Transposed: the fused BF16 widen + transpose equals decode then transpose, on shapes that do not divide the tile', (t) => {
  for (const [rows, cols] of [[1, 1], [33, 70], [64, 32], [5, 129]] as const) {
    const raw = new Uint16Array(rows * cols).map((_, i) => (i * 2654435761) >>> 16);
    const wide = decodeToFloat32('BF16', new Uint8Array(raw.buffer));
    const out = bf16Transposed(new Uint8Array(raw.buffer), rows, cols);
    let same = true;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (!Object.is(out[c * rows + r], wide[r * cols + c])) same = false;
    t.true(same, `${rows}×${cols}`);
  }
});
