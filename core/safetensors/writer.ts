// Streaming safetensors writer. The header is fixed up front from the tensor
// specs (names, dtypes, shapes; data laid out in spec order), written first,
// then the data bytes are appended as they come, in chunks of any size. Each
// write resolves once the bytes are handed to the OS, so a producer awaiting
// `write` never runs ahead of the disk (backpressure) and memory stays at one
// staging buffer. The header layout matches huggingface/safetensors'
// serializer: compact JSON, `__metadata__` first, padded with spaces so the data
// section starts at a multiple of 8.

import { open, rm, type FileHandle } from 'node:fs/promises';
import { MoeforgeError, fsError } from '../errors.js';
import { DTYPE_BYTES, isDtype, type Dtype } from '../dtypes.js';
import { METADATA_KEY } from './header.js';

export interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: number[];
}

/** Bytes of a tensor's data; throws invalid_argument on a bad spec. */
export function specBytes(spec: TensorSpec): number {
  if (!isDtype(spec.dtype)) {
    throw new MoeforgeError('invalid_argument', `unknown dtype ${String(spec.dtype)}`, { path: spec.name });
  }
  let numel = 1;
  for (const d of spec.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new MoeforgeError('invalid_argument', `shape [${spec.shape.join(', ')}] is not non-negative integers`, {
        path: spec.name,
      });
    }
    numel *= d;
  }
  const bytes = numel * DTYPE_BYTES[spec.dtype];
  if (!Number.isSafeInteger(bytes)) {
    throw new MoeforgeError('invalid_argument', `shape [${spec.shape.join(', ')}] is too large`, { path: spec.name });
  }
  return bytes;
}

/**
 * The 8-byte length plus the header JSON, padded with spaces to a multiple of 8.
 * Specs order = data order = header key order; `__metadata__` (when given) first.
 */
export function encodeHeader(specs: TensorSpec[], metadata?: Record<string, string>): Uint8Array {
  // Built by hand, not JSON.stringify(object): JS objects reorder integer-like keys ("0", "1"), and the
  // header order must be the spec order.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const meta = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') {
        throw new MoeforgeError('invalid_argument', `metadata value is not a string`, { path: `${METADATA_KEY}.${k}` });
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${meta.join(',')}}`);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const spec of specs) {
    if (spec.name === METADATA_KEY) {
      throw new MoeforgeError('invalid_argument', 'a tensor cannot be named __metadata__', { path: spec.name });
    }
    if (seen.has(spec.name)) throw new MoeforgeError('invalid_argument', 'tensor name appears twice', { path: spec.name });
    seen.add(spec.name);
    const end = offset + specBytes(spec);
    parts.push(
      `${JSON.stringify(spec.name)}:{"dtype":${JSON.stringify(spec.dtype)},"shape":${JSON.stringify(spec.shape)},"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength);
  return out;
}

/** Writes smaller than this are gathered into one staging buffer of this size. */
const STAGING_BYTES = 4 << 20;
/** Largest single write handed to the OS (write(2) caps at 0x7ffff000). */
const MAX_WRITE = 1 << 30;

async function writeFully(fh: FileHandle, bytes: Uint8Array, label: string): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const len = Math.min(bytes.byteLength - done, MAX_WRITE);
    try {
      const { bytesWritten } = await fh.write(bytes, done, len);
      done += bytesWritten;
    } catch (e) {
      throw fsError(e, label, 'write');
    }
  }
}

export class SafetensorsWriter {
  readonly path: string;
  /** Data bytes the header declares. */
  readonly dataBytes: number;
  private written = 0;
  private fh: FileHandle | undefined;
  private staging: Uint8Array | undefined;
  private staged = 0;
  private failed = false;

  private constructor(path: string, fh: FileHandle, dataBytes: number) {
    this.path = path;
    this.fh = fh;
    this.dataBytes = dataBytes;
  }

  static async create(path: string, specs: TensorSpec[], metadata?: Record<string, string>): Promise<SafetensorsWriter> {
    const header = encodeHeader(specs, metadata);
    const dataBytes = specs.reduce((s, t) => s + specBytes(t), 0);
    let fh: FileHandle;
    try {
      fh = await open(path, 'w');
    } catch (e) {
      throw fsError(e, path, 'create safetensors file');
    }
    const w = new SafetensorsWriter(path, fh, dataBytes);
    try {
      await writeFully(fh, header, path);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w;
  }

  /** Data bytes appended so far. */
  get bytesWritten(): number {
    return this.written;
  }

  /** Appends data bytes (tensors in spec order; chunks may split or join tensors). */
  async write(bytes: Uint8Array): Promise<void> {
    const fh = this.open();
    if (this.written + bytes.byteLength > this.dataBytes) {
      this.failed = true;
      throw new MoeforgeError(
        'invalid_argument',
        `write of ${bytes.byteLength} bytes would exceed the ${this.dataBytes} data bytes the header declares`,
        { path: this.path },
      );
    }
    this.written += bytes.byteLength;
    try {
      if (bytes.byteLength >= STAGING_BYTES / 4) {
        // Large chunks go straight to the file: no copy.
        await this.flush(fh);
        await writeFully(fh, bytes, this.path);
        return;
      }
      this.staging ??= new Uint8Array(STAGING_BYTES);
      if (this.staged + bytes.byteLength > STAGING_BYTES) await this.flush(fh);
      this.staging.set(bytes, this.staged);
      this.staged += bytes.byteLength;
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  /** Flushes and closes; an error (and no file left behind) when fewer bytes came than the header declares. */
  async close(): Promise<void> {
    const fh = this.open();
    if (this.failed || this.written !== this.dataBytes) {
      const why = this.failed
        ? 'an earlier write failed'
        : `${this.written} data bytes were written but the header declares ${this.dataBytes}`;
      await this.abort();
      throw new MoeforgeError('io_error', `incomplete safetensors file removed: ${why}`, { path: this.path });
    }
    try {
      await this.flush(fh);
      this.fh = undefined;
      await fh.close();
    } catch (e) {
      await this.abort();
      throw fsError(e, this.path, 'write');
    }
  }

  /** Closes and deletes the partial file. */
  async abort(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.staging = undefined;
    await fh?.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }

  private open(): FileHandle {
    if (!this.fh) throw new MoeforgeError('io_error', 'safetensors writer is closed', { path: this.path });
    return this.fh;
  }

  private async flush(fh: FileHandle): Promise<void> {
    if (this.staged === 0 || !this.staging) return;
    const n = this.staged;
    this.staged = 0;
    await writeFully(fh, this.staging.subarray(0, n), this.path);
  }
}

/** Writes a whole file from in-memory tensors (small files, tests). */
export async function writeSafetensors(
  path: string,
  tensors: (TensorSpec & { data: Uint8Array })[],
  metadata?: Record<string, string>,
): Promise<void> {
  for (const t of tensors) {
    const want = specBytes(t);
    if (t.data.byteLength !== want) {
      throw new MoeforgeError(
        'shape_mismatch',
        `${t.data.byteLength} data bytes for ${t.dtype} [${t.shape.join(', ')}], which needs ${want}`,
        { path: t.name },
      );
    }
  }
  const w = await SafetensorsWriter.create(path, tensors, metadata);
  try {
    for (const t of tensors) await w.write(t.data);
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.close();
}
