// safetensors header validation. The format (huggingface/safetensors, docs
// "format"): 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON, then the
// data section. The JSON maps tensor names to {dtype, shape, data_offsets}
// (offsets relative to the data section) plus an optional `__metadata__` map of
// strings. Nothing from the header is trusted before it is checked: no
// allocation is sized by an unchecked number, so a fuzzed file cannot make us
// allocate more than the file itself.

import { MoeforgeError } from '../errors.js';
import { DTYPE_BYTES, isDtype, type Dtype } from '../dtypes.js';

export interface TensorHeader {
  name: string;
  dtype: Dtype;
  shape: number[];
  numel: number;
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

/** The reference implementation's cap (safetensors `MAX_HEADER_SIZE`, 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export const METADATA_KEY = '__metadata__';

function corrupt(label: string, reason: string): MoeforgeError {
  return new MoeforgeError('corrupt_safetensors', reason, { path: label });
}

/** Checks the 8-byte prefix against the file size; returns N, the header's byte length. */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, label: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw corrupt(label, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw corrupt(label, `header length ${n} exceeds the 100 MB limit`);
  const len = Number(n);
  if (8 + len > fileSize) throw corrupt(label, `header length ${len} runs past the end of the ${fileSize}-byte file`);
  if (len < 2) throw corrupt(label, `header length ${len} is too short for a JSON object`);
  return len;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parses and validates a header. `fileSize` is the whole file's size: the data
 * section is what follows the 8-byte prefix and the header. Returns tensors in
 * data order (sorted by begin).
 */
export function parseHeader(
  json: Uint8Array | string,
  fileSize: number,
  label: string,
): { tensors: TensorHeader[]; metadata: Record<string, string>; keyOrder: string[] } {
  let text: string;
  let headerBytes: number;
  if (typeof json === 'string') {
    text = json;
    headerBytes = Buffer.byteLength(json, 'utf8');
  } else {
    headerBytes = json.byteLength;
    try {
      text = utf8.decode(json);
    } catch {
      throw corrupt(label, 'header is not valid UTF-8');
    }
  }
  const dataSize = fileSize - 8 - headerBytes;
  if (dataSize < 0) throw corrupt(label, `header of ${headerBytes} bytes runs past the end of the ${fileSize}-byte file`);

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw corrupt(label, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw corrupt(label, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const tensors: TensorHeader[] = [];
  const keyOrder: string[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    keyOrder.push(name);
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry)) throw corrupt(label, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw corrupt(label, `__metadata__.${k} is ${describe(v)}, not a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseEntry(name, entry, label));
  }

  // Data order: sorted by begin (zero-size tensors may share a begin; order them by end, then keep header order).
  const ordered = tensors
    .map((t, i) => ({ t, i }))
    .sort((a, b) => a.t.begin - b.t.begin || a.t.end - b.t.end || a.i - b.i)
    .map((x) => x.t);
  let expected = 0;
  for (const t of ordered) {
    if (t.begin !== expected) {
      throw corrupt(
        label,
        t.begin > expected
          ? `tensor ${t.name}: data_offsets start at ${t.begin}, leaving a gap after byte ${expected}`
          : `tensor ${t.name}: data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${expected})`,
      );
    }
    if (t.end > dataSize) {
      throw corrupt(label, `tensor ${t.name}: data_offsets end ${t.end} is past the ${dataSize}-byte data section`);
    }
    expected = t.end;
  }
  if (expected !== dataSize) {
    throw corrupt(label, `tensors cover ${expected} bytes but the data section holds ${dataSize}`);
  }
  return { tensors: ordered, metadata, keyOrder };
}

function parseEntry(name: string, entry: unknown, label: string): TensorHeader {
  const where = `tensor ${name}`;
  if (!isPlainObject(entry)) throw corrupt(label, `${where}: entry is not an object`);
  const keys = Object.keys(entry);
  for (const k of keys) {
    if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw corrupt(label, `${where}: unknown field "${k}"`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw corrupt(label, `${where}: dtype is missing or not a string`);
  if (!isDtype(dtype)) throw corrupt(label, `${where}: unknown dtype ${describe(dtype)}`);
  if (!Array.isArray(shape)) throw corrupt(label, `${where}: shape is missing or not an array`);
  let numel = 1;
  let zero = false;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw corrupt(label, `${where}: shape ${describe(shape)} has a dimension that is not a non-negative integer`);
    }
    if (d === 0) zero = true;
    numel *= d;
  }
  if (zero) numel = 0;
  if (!Number.isSafeInteger(numel)) throw corrupt(label, `${where}: shape ${describe(shape)} has too many elements`);
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw corrupt(label, `${where}: data_offsets is missing or not a pair`);
  }
  const [begin, end] = offsets as unknown[];
  if (
    typeof begin !== 'number' ||
    typeof end !== 'number' ||
    !Number.isSafeInteger(begin) ||
    !Number.isSafeInteger(end) ||
    begin < 0 ||
    end < begin
  ) {
    throw corrupt(label, `${where}: data_offsets ${describe(offsets)} are not two integers with begin <= end`);
  }
  const bytes = numel * DTYPE_BYTES[dtype];
  if (end - begin !== bytes) {
    throw corrupt(
      label,
      `${where}: data_offsets span ${end - begin} bytes but ${dtype} ${describe(shape)} needs ${bytes}`,
    );
  }
  return { name, dtype, shape: shape as number[], numel, begin, end };
}
