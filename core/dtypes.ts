// safetensors dtypes and the float conversions moeforge computes with.
//
// Every tensor is computed in float32 and written in the recipe's dtype with
// round-to-nearest-even (RNE), as torch's `.to(torch.bfloat16)` / `.half()` do
// (c10/util/BFloat16.h `round_to_nearest_even`, c10/util/Half.h
// `fp16_ieee_from_fp32_value`). NaN stays NaN (sign and top payload bits kept,
// quiet bit set), ±Inf stays ±Inf, subnormals are produced and decoded exactly,
// and finite values beyond the largest finite half round to Inf as IEEE 754 says.
//
// Byte order: safetensors is little-endian; so is every platform Node runs on
// in practice (x86-64, arm64), so typed-array views over the bytes are used
// directly. A big-endian host is refused once, at load.

import os from 'node:os';

export type Dtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'I16'
  | 'U16'
  | 'I32'
  | 'U32'
  | 'I64'
  | 'U64'
  | 'F16'
  | 'BF16'
  | 'F32'
  | 'F64'
  | 'F8_E4M3'
  | 'F8_E5M2';

/** Bytes per element, as in the safetensors spec (huggingface/safetensors `Dtype::size`). */
export const DTYPE_BYTES: Record<Dtype, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
  F16: 2,
  BF16: 2,
  F32: 4,
  F64: 8,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export const FLOAT_DTYPES: readonly Dtype[] = ['F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2'];

export function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

export function isFloatDtype(d: Dtype): boolean {
  return FLOAT_DTYPES.includes(d);
}

if (os.endianness() !== 'LE') {
  throw new Error('moeforge needs a little-endian host: safetensors data is little-endian');
}

// ---------------------------------------------------------------------------
// Scalar conversions (one shared scratch word for the bit casts).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

export function bitsToF32(u: number): number {
  scratchU32[0] = u >>> 0;
  return scratchF32[0]!;
}

/** float32 bits → bfloat16 bits, round-to-nearest-even; NaN kept (quiet), Inf kept, overflow → Inf. */
function bf16FromF32Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff; // NaN: keep sign/payload, force quiet
  // RNE: add 0x7fff plus the lowest kept bit, then truncate (carry may reach the exponent: overflow → Inf).
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16Bits(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}

export function bf16BitsToF32(b: number): number {
  return bitsToF32((b & 0xffff) << 16);
}

/** float32 bits → IEEE half bits, round-to-nearest-even. */
function f16FromF32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00; // NaN (quiet) / Inf
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding
  if (e >= 1) {
    // Normal: drop 13 mantissa bits with RNE; a carry out of the mantissa bumps the exponent (to Inf at the top).
    const rest = mant & 0x1fff;
    let h = (e << 10) | (mant >>> 13);
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h; // h ≤ 0x7c00 here
  }
  // Subnormal half (or zero): value = M · 2^(exp-150) with M the 24-bit significand; half subnormal unit is 2^-24.
  if (e < -10) return sign; // below half the smallest subnormal: rounds to ±0
  const m = mant | 0x800000;
  const shift = 14 - e; // 14..24
  const half = 1 << (shift - 1);
  const rest = m & ((1 << shift) - 1);
  let h = m >>> shift;
  if (rest > half || (rest === half && (h & 1) === 1)) h++; // may become 0x400, the smallest normal: correct
  return sign | h;
}

export function f32ToF16Bits(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}

export function f16BitsToF32(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const exp = (b >>> 10) & 0x1f;
  const mant = b & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) {
    if (mant === 0) return sign * Infinity;
    // Keep the payload: widen the bits rather than returning a canonical NaN.
    return bitsToF32(((b & 0x8000) << 16) | 0x7f800000 | (mant << 13));
  }
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** F8_E4M3 (torch.float8_e4m3fn): bias 7, no Inf, S.1111.111 is NaN, subnormals m/8·2^-6. */
export function f8e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  if (exp === 0) return sign * (mant / 8) * 2 ** -6;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** F8_E5M2 (torch.float8_e5m2) is the top byte of an IEEE half. */
export function f8e5m2ToF32(b: number): number {
  return f16BitsToF32((b & 0xff) << 8);
}

// Lookup tables for the bulk decoders (built on first use: 256 KiB for F16).
let f16Table: Float32Array | undefined;
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  return f16Table;
}
let f8Tables: { e4m3: Float32Array; e5m2: Float32Array } | undefined;
function f8Luts(): { e4m3: Float32Array; e5m2: Float32Array } {
  if (!f8Tables) {
    const e4m3 = new Float32Array(256);
    const e5m2 = new Float32Array(256);
    for (let i = 0; i < 256; i++) {
      e4m3[i] = f8e4m3ToF32(i);
      e5m2[i] = f8e5m2ToF32(i);
    }
    f8Tables = { e4m3, e5m2 };
  }
  return f8Tables;
}

// ---------------------------------------------------------------------------
// Bulk conversions over byte buffers.

export type TypedValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A view of `bytes` as `ctor` elements; copies only when the offset is misaligned. */
function view<T>(
  ctor: { new (buf: ArrayBufferLike, off: number, len: number): T; BYTES_PER_ELEMENT: number },
  bytes: Uint8Array,
): T {
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`byte length ${bytes.byteLength} is not a multiple of ${size}`);
  }
  if (bytes.byteOffset % size === 0) return new ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, bytes.byteLength / size);
}

/** Native values of a tensor's bytes: F16/BF16/F8 are widened to Float32Array, others are views (no copy when aligned). */
export function decodeTyped(dtype: Dtype, bytes: Uint8Array): TypedValues {
  switch (dtype) {
    case 'F32':
      return view(Float32Array, bytes);
    case 'F64':
      return view(Float64Array, bytes);
    case 'F16':
    case 'BF16':
    case 'F8_E4M3':
    case 'F8_E5M2':
      return decodeToFloat32(dtype, bytes);
    case 'BOOL':
    case 'U8':
      return bytes;
    case 'I8':
      return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    case 'I16':
      return view(Int16Array, bytes);
    case 'U16':
      return view(Uint16Array, bytes);
    case 'I32':
      return view(Int32Array, bytes);
    case 'U32':
      return view(Uint32Array, bytes);
    case 'I64':
      return view(BigInt64Array, bytes);
    case 'U64':
      return view(BigUint64Array, bytes);
  }
}

/** Decodes any dtype to float32 (ints converted by value; I64/U64 beyond 2^24 lose precision as float32 must). */
export function decodeToFloat32(dtype: Dtype, bytes: Uint8Array, out?: Float32Array): Float32Array {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${dtype}: byte length ${bytes.byteLength} is not a multiple of ${size}`);
  }
  const n = bytes.byteLength / size;
  if (out && out.length < n) throw new RangeError(`output holds ${out.length} values, ${n} needed`);
  const dst = out ?? new Float32Array(n);
  switch (dtype) {
    case 'F32':
      dst.set(view(Float32Array, bytes));
      return dst;
    case 'BF16': {
      // bfloat16 is the top half of a float32: widen by shifting the bits left by 16.
      const src = view(Uint16Array, bytes);
      const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
      return dst;
    }
    case 'F16': {
      const src = view(Uint16Array, bytes);
      const lut = f16Lut();
      for (let i = 0; i < n; i++) dst[i] = lut[src[i]!]!;
      return dst;
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const lut = dtype === 'F8_E4M3' ? f8Luts().e4m3 : f8Luts().e5m2;
      for (let i = 0; i < n; i++) dst[i] = lut[bytes[i]!]!;
      return dst;
    }
    case 'I64':
    case 'U64': {
      const src: BigInt64Array | BigUint64Array =
        dtype === 'I64' ? view(BigInt64Array, bytes) : view(BigUint64Array, bytes);
      for (let i = 0; i < n; i++) dst[i] = Number(src[i]!);
      return dst;
    }
    default: {
      const src = decodeTyped(dtype, bytes) as Exclude<TypedValues, BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) dst[i] = src[i]!;
      return dst;
    }
  }
}

/** Encodes float32 values as F32/F16/BF16 bytes with round-to-nearest-even. */
export function encodeFloat32(dtype: 'F32' | 'F16' | 'BF16', values: Float32Array, out?: Uint8Array): Uint8Array {
  const n = values.length;
  const bytes = n * DTYPE_BYTES[dtype];
  if (out && out.byteLength < bytes) throw new RangeError(`output holds ${out.byteLength} bytes, ${bytes} needed`);
  const dst = out ? out.subarray(0, bytes) : new Uint8Array(bytes);
  if (dtype === 'F32') {
    dst.set(new Uint8Array(values.buffer, values.byteOffset, bytes));
    return dst;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const aligned = dst.byteOffset % 2 === 0;
  const target = aligned ? new Uint16Array(dst.buffer, dst.byteOffset, n) : new Uint16Array(n);
  if (dtype === 'BF16') for (let i = 0; i < n; i++) target[i] = bf16FromF32Bits(bits[i]!);
  else for (let i = 0; i < n; i++) target[i] = f16FromF32Bits(bits[i]!);
  if (!aligned) dst.set(new Uint8Array(target.buffer));
  return dst;
}

// ---------------------------------------------------------------------------
// torch dtype names (config.json `torch_dtype` / `dtype`, recipe `dtype`).

const TORCH_NAMES: Record<string, 'F32' | 'F16' | 'BF16'> = {
  float32: 'F32',
  float: 'F32',
  fp32: 'F32',
  f32: 'F32',
  float16: 'F16',
  half: 'F16',
  fp16: 'F16',
  f16: 'F16',
  bfloat16: 'BF16',
  bf16: 'BF16',
};

/**
 * `float32` / `bfloat16` / `float16`, as transformers writes them, plus the spellings mergekit and
 * transformers accept (`torch.bfloat16`, `fp16`, `bf16`, `half`, `float`). Unknown → undefined.
 */
export function torchDtypeToDtype(name: string): 'F32' | 'F16' | 'BF16' | undefined {
  const key = name.trim().toLowerCase().replace(/^torch\./, '');
  return Object.prototype.hasOwnProperty.call(TORCH_NAMES, key) ? TORCH_NAMES[key] : undefined;
}

export function dtypeToTorchDtype(d: 'F32' | 'F16' | 'BF16'): 'float32' | 'bfloat16' | 'float16' {
  return d === 'F32' ? 'float32' : d === 'BF16' ? 'bfloat16' : 'float16';
}
