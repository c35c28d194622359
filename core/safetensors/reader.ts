// Reads one .safetensors file by byte range. The header is validated in full
// (./header.ts) before any tensor is read; each read fetches exactly the
// tensor's bytes with positioned reads, never the whole file, so memory stays at
// the size of what is asked for.

import { open, type FileHandle } from 'node:fs/promises';
import { MoeforgeError, fsError } from '../errors.js';
import { DTYPE_BYTES, decodeToFloat32, decodeTyped, type TypedValues } from '../dtypes.js';
import { checkHeaderLength, parseHeader, type TensorHeader } from './header.js';

export type { TensorHeader } from './header.js';

/** Largest single positioned read: Linux caps read(2) at 0x7ffff000 bytes. */
const MAX_READ = 1 << 30;
/** Bytes read at open: the length prefix and, for all but huge headers, the header itself. */
const FIRST_READ = 256 << 10;

/** Fills `dst` from `fh` at `position`; a short file is a corrupt_safetensors error. */
export async function readFully(fh: FileHandle, dst: Uint8Array, position: number, label: string): Promise<void> {
  let done = 0;
  while (done < dst.byteLength) {
    const want = Math.min(dst.byteLength - done, MAX_READ);
    let got: number;
    try {
      ({ bytesRead: got } = await fh.read(dst, done, want, position + done));
    } catch (e) {
      throw fsError(e, label, 'read');
    }
    if (got === 0) {
      throw new MoeforgeError('corrupt_safetensors', `file ended at byte ${position + done} while reading`, {
        path: label,
      });
    }
    done += got;
  }
}

export class SafetensorsReader {
  readonly path: string;
  readonly fileSize: number;
  /** Absolute file offset of the data section (8 + header length). */
  readonly dataStart: number;
  readonly metadata: Record<string, string>;
  /** Every tensor, in data order. */
  readonly tensors: ReadonlyMap<string, TensorHeader>;
  /** Tensor names (and `__metadata__`) in the order the header JSON lists them. */
  readonly headerKeyOrder: readonly string[];
  private fh: FileHandle | undefined;

  private constructor(
    path: string,
    fh: FileHandle,
    fileSize: number,
    dataStart: number,
    parsed: ReturnType<typeof parseHeader>,
  ) {
    this.path = path;
    this.fh = fh;
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.metadata = parsed.metadata;
    this.headerKeyOrder = parsed.keyOrder;
    this.tensors = new Map(parsed.tensors.map((t) => [t.name, t]));
  }

  /** Opens and validates; every header problem is a corrupt_safetensors error naming the file. */
  static async open(path: string): Promise<SafetensorsReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw fsError(e, path, 'open safetensors file');
    }
    try {
      let size: number;
      try {
        const st = await fh.stat();
        if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        size = st.size;
      } catch (e) {
        throw fsError(e, path, 'open safetensors file');
      }
      // One read usually brings the length and the whole header (headers of large models are ~100 KB).
      const head = new Uint8Array(Math.min(size, FIRST_READ));
      await readFully(fh, head, 0, path);
      const n = checkHeaderLength(head, size, path); // bounds N by the file size and 100 MB before allocating
      let json: Uint8Array;
      if (8 + n <= head.byteLength) {
        json = head.subarray(8, 8 + n);
      } else {
        json = new Uint8Array(n);
        json.set(head.subarray(8));
        await readFully(fh, json.subarray(head.byteLength - 8), head.byteLength, path);
      }
      const parsed = parseHeader(json, size, path);
      return new SafetensorsReader(path, fh, size, 8 + n, parsed);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Validates a header given as bytes or text (for remote headers, tests). */
  static parseHeader(
    json: Uint8Array | string,
    fileSize: number,
    label: string,
  ): { tensors: TensorHeader[]; metadata: Record<string, string> } {
    const { tensors, metadata } = parseHeader(json, fileSize, label);
    return { tensors, metadata };
  }

  header(name: string): TensorHeader {
    const h = this.tensors.get(name);
    if (!h) throw new MoeforgeError('missing_tensor', `tensor not found in ${this.path}`, { path: name });
    return h;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const h = this.header(name);
    return this.readAt(h.begin, h.end - h.begin);
  }

  /** Bytes [byteStart, byteEnd) of the tensor's data. */
  async readRawRange(name: string, byteStart: number, byteEnd: number): Promise<Uint8Array> {
    const h = this.header(name);
    const size = h.end - h.begin;
    if (!Number.isSafeInteger(byteStart) || !Number.isSafeInteger(byteEnd) || byteStart < 0 || byteEnd < byteStart || byteEnd > size) {
      throw new RangeError(`byte range [${byteStart}, ${byteEnd}) is outside tensor ${name} (${size} bytes)`);
    }
    return this.readAt(h.begin + byteStart, byteEnd - byteStart);
  }

  /**
   * Reads `dst.byteLength` bytes of the tensor's data, from byte `byteStart`, into a caller's buffer:
   * streaming code reuses one buffer instead of allocating per read.
   */
  async readRawInto(name: string, dst: Uint8Array, byteStart = 0): Promise<Uint8Array> {
    const h = this.header(name);
    const size = h.end - h.begin;
    if (!Number.isSafeInteger(byteStart) || byteStart < 0 || byteStart + dst.byteLength > size) {
      throw new RangeError(`${dst.byteLength} bytes from ${byteStart} is outside tensor ${name} (${size} bytes)`);
    }
    if (!this.fh) throw new MoeforgeError('io_error', 'safetensors file is closed', { path: this.path });
    await readFully(this.fh, dst, this.dataStart + h.begin + byteStart, this.path);
    return dst;
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const h = this.header(name);
    return decodeToFloat32(h.dtype, await this.readRaw(name));
  }

  /** Elements [elemStart, elemEnd) in row-major order, as float32. */
  async readFloat32Range(name: string, elemStart: number, elemEnd: number): Promise<Float32Array> {
    const h = this.header(name);
    if (!Number.isSafeInteger(elemStart) || !Number.isSafeInteger(elemEnd) || elemStart < 0 || elemEnd < elemStart || elemEnd > h.numel) {
      throw new RangeError(`element range [${elemStart}, ${elemEnd}) is outside tensor ${name} (${h.numel} elements)`);
    }
    const size = DTYPE_BYTES[h.dtype];
    return decodeToFloat32(h.dtype, await this.readRawRange(name, elemStart * size, elemEnd * size));
  }

  /** Native values (F16/BF16/F8 widened to Float32Array; BOOL as Uint8Array). */
  async readTyped(name: string): Promise<TypedValues> {
    const h = this.header(name);
    return decodeTyped(h.dtype, await this.readRaw(name));
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  private async readAt(dataOffset: number, length: number): Promise<Uint8Array> {
    if (!this.fh) throw new MoeforgeError('io_error', 'safetensors file is closed', { path: this.path });
    // Own ArrayBuffer (byteOffset 0, so typed views are aligned), not zero-filled: every byte is read into.
    const dst = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
    await readFully(this.fh, dst, this.dataStart + dataOffset, this.path);
    return dst;
  }
}
