// A model folder as transformers' `from_pretrained` reads it: config.json plus
// either `model.safetensors` or shards listed by `model.safetensors.index.json`
// (`weight_map`: tensor name → shard file). Every tensor is looked up by name
// across the shards. Pickle checkpoints (`pytorch_model.bin`, `*.pt`) are refused:
// unpickling runs arbitrary code (the reason safetensors exists).

import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError, fsError } from '../errors.js';
import type { Dtype } from '../dtypes.js';
import { SafetensorsReader, type TensorHeader } from '../safetensors/reader.js';

export const CONFIG_FILE = 'config.json';
export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** `file` of an in-memory tensor's header (withTensors). */
export const MEMORY_FILE = '(memory)';

export interface MemoryTensor {
  shape: number[];
  data: Float32Array;
}

const PICKLE_FILE = /(^pytorch_model.*\.bin(\.index\.json)?$)|(\.(pt|pth|ckpt|pkl)$)/;

async function readJson(file: string, code: 'invalid_config' | 'corrupt_safetensors'): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, file, 'read');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MoeforgeError(code, `not valid JSON (${(e as Error).message})`, { path: file, cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Shard file names from an index are checked before they touch the disk: plain names inside the folder. */
function checkShardName(name: string, indexFile: string): void {
  if (name === '' || name.includes('/') || name.includes('\\') || name === '.' || name === '..' || path.isAbsolute(name)) {
    throw new MoeforgeError('unsafe_path', `weight_map names a file outside the folder: ${JSON.stringify(name)}`, {
      path: indexFile,
    });
  }
}

export class Checkpoint {
  readonly folder: string;
  readonly rawConfig: Record<string, unknown>;
  /** The safetensors files, relative to `folder`, in shard order. */
  readonly files: string[];
  /** Bytes on disk of the safetensors files. */
  readonly totalBytes: number;
  private readonly readers: Map<string, SafetensorsReader>;
  /** Tensor name → file, in the order the checkpoint lists them. */
  private readonly location: Map<string, string>;
  /** A view's prefix (see `view`): tensor `name` is stored as prefix + name; '' otherwise. */
  private prefix = '';
  /** Float32 tensors held in memory (see `withTensors`); they shadow stored tensors of the same name. */
  private memory = new Map<string, MemoryTensor>();
  /** Views share their parent's readers: closing one closes nothing. */
  private isView = false;

  private constructor(
    folder: string,
    rawConfig: Record<string, unknown>,
    readers: Map<string, SafetensorsReader>,
    location: Map<string, string>,
  ) {
    this.folder = folder;
    this.rawConfig = rawConfig;
    this.readers = readers;
    this.location = location;
    this.files = [...readers.keys()];
    this.totalBytes = [...readers.values()].reduce((s, r) => s + r.fileSize, 0);
  }

  static async open(folder: string): Promise<Checkpoint> {
    let entries: string[];
    try {
      const st = await stat(folder);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      entries = await readdir(folder);
    } catch (e) {
      throw fsError(e, folder, 'open model folder');
    }
    const has = new Set(entries);

    // Which weights, in transformers' order (modeling_utils `_get_resolved_checkpoint_files`): the single
    // file, else the index, else explain why nothing can be read.
    let shardNames: string[];
    let weightMap: Map<string, string> | undefined;
    if (has.has(SINGLE_FILE)) {
      shardNames = [SINGLE_FILE];
    } else if (has.has(INDEX_FILE)) {
      const indexPath = path.join(folder, INDEX_FILE);
      const index = await readJson(indexPath, 'corrupt_safetensors');
      const wm = isObject(index) ? index['weight_map'] : undefined;
      if (!isObject(wm)) {
        throw new MoeforgeError('corrupt_safetensors', 'index has no weight_map object', { path: indexPath });
      }
      weightMap = new Map();
      for (const [name, file] of Object.entries(wm)) {
        if (typeof file !== 'string') {
          throw new MoeforgeError('corrupt_safetensors', `weight_map entry for ${name} is not a file name`, {
            path: indexPath,
          });
        }
        checkShardName(file, indexPath);
        weightMap.set(name, file);
      }
      shardNames = [...new Set(weightMap.values())].sort();
    } else {
      const pickles = entries.filter((e) => PICKLE_FILE.test(e));
      if (pickles.length > 0) {
        throw new MoeforgeError(
          'unsupported_format',
          `only pickle weights (${pickles.sort()[0]}): loading pickles runs arbitrary code, so moeforge reads safetensors only; convert the model to safetensors first`,
          { path: folder },
        );
      }
      throw new MoeforgeError('missing_file', `no ${SINGLE_FILE} or ${INDEX_FILE} in the model folder`, {
        path: folder,
      });
    }

    const configPath = path.join(folder, CONFIG_FILE);
    if (!has.has(CONFIG_FILE)) throw new MoeforgeError('missing_file', 'model folder has no config.json', { path: configPath });
    const rawConfig = await readJson(configPath, 'invalid_config');
    if (!isObject(rawConfig)) throw new MoeforgeError('invalid_config', 'config.json is not a JSON object', { path: configPath });

    const readers = new Map<string, SafetensorsReader>();
    try {
      for (const name of shardNames) readers.set(name, await SafetensorsReader.open(path.join(folder, name)));
      const location = new Map<string, string>();
      if (weightMap) {
        // The index is what transformers loads by; each entry must be in the shard it names.
        for (const [tensor, file] of weightMap) {
          if (!readers.get(file)!.tensors.has(tensor)) {
            throw new MoeforgeError('missing_tensor', `${INDEX_FILE} places it in ${file}, which does not hold it`, {
              path: tensor,
            });
          }
          location.set(tensor, file);
        }
      } else {
        for (const tensor of readers.get(SINGLE_FILE)!.tensors.keys()) location.set(tensor, SINGLE_FILE);
      }
      return new Checkpoint(folder, rawConfig, readers, location);
    } catch (e) {
      await Promise.all([...readers.values()].map((r) => r.close()));
      throw e;
    }
  }

  /** Every tensor name (index order for sharded folders, data order for a single file). */
  names(): string[] {
    return [...new Set([...this.location.keys(), ...this.memory.keys()])];
  }

  has(name: string): boolean {
    return this.location.has(name) || this.memory.has(name);
  }

  header(name: string): TensorHeader & { file: string } {
    const m = this.memory.get(name);
    if (m) return { name, dtype: 'F32', shape: [...m.shape], numel: m.data.length, begin: 0, end: m.data.byteLength, file: MEMORY_FILE };
    const file = this.location.get(name);
    if (file === undefined) {
      throw new MoeforgeError('missing_tensor', `tensor not found in the checkpoint at ${this.folder}`, { path: name });
    }
    return { ...this.readers.get(file)!.header(this.prefix + name), name, file };
  }

  headers(): Map<string, { dtype: Dtype; shape: number[] }> {
    const out = new Map<string, { dtype: Dtype; shape: number[] }>();
    for (const name of this.names()) {
      const h = this.header(name);
      out.set(name, { dtype: h.dtype, shape: h.shape });
    }
    return out;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const m = this.memory.get(name);
    if (m) return new Uint8Array(m.data.slice().buffer);
    return this.reader(name).readRaw(this.prefix + name);
  }

  async readRawRange(name: string, b0: number, b1: number): Promise<Uint8Array> {
    const m = this.memory.get(name);
    if (m) return new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength).slice(b0, b1);
    return this.reader(name).readRawRange(this.prefix + name, b0, b1);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const m = this.memory.get(name);
    if (m) return m.data.slice();
    return this.reader(name).readFloat32(this.prefix + name);
  }

  async readFloat32Range(name: string, e0: number, e1: number): Promise<Float32Array> {
    const m = this.memory.get(name);
    if (m) return m.data.slice(e0, e1);
    return this.reader(name).readFloat32Range(this.prefix + name, e0, e1);
  }

  /**
   * The tensors named `prefix` + name, seen as a checkpoint of their own (names without the
   * prefix) with another config: one expert of a heterogeneous repo (core/hetero), whose
   * weights live under `experts.{i}.` in shared shards. Shares this checkpoint's readers;
   * closing the view closes nothing.
   */
  view(prefix: string, rawConfig: Record<string, unknown>): Checkpoint {
    const full = this.prefix + prefix;
    const location = new Map<string, string>();
    for (const [name, file] of this.location) if (name.startsWith(prefix)) location.set(name.slice(prefix.length), file);
    const v = new Checkpoint(this.folder, rawConfig, this.readers, location);
    v.prefix = full;
    v.isView = true;
    for (const [name, m] of this.memory) if (name.startsWith(prefix)) v.memory.set(name.slice(prefix.length), m);
    return v;
  }

  /**
   * This checkpoint (a view: closing it closes nothing) with extra float32 tensors held in
   * memory, shadowing stored ones of the same name, and optionally another config: a
   * projected expert of a heterogeneous repo (core/hetero/projected.ts) is a causal LM
   * whose embedding and head are computed at load.
   */
  withTensors(tensors: Record<string, MemoryTensor>, rawConfig: Record<string, unknown> = this.rawConfig): Checkpoint {
    const v = new Checkpoint(this.folder, rawConfig, this.readers, new Map(this.location));
    v.prefix = this.prefix;
    v.isView = true;
    v.memory = new Map(this.memory);
    for (const [name, m] of Object.entries(tensors)) {
      const numel = m.shape.reduce((a, b) => a * b, 1);
      if (numel !== m.data.length) throw new Error(`in-memory tensor ${name}: shape [${m.shape.join(', ')}] does not hold ${m.data.length} values`);
      v.memory.set(name, m);
    }
    return v;
  }

  async close(): Promise<void> {
    if (this.isView) return;
    await Promise.all([...this.readers.values()].map((r) => r.close()));
  }

  private reader(name: string): SafetensorsReader {
    return this.readers.get(this.header(name).file)!;
  }
}
