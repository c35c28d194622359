// Sharded, atomic checkpoint writer. Shards are planned up front from the
// tensor plan, the way transformers' `save_pretrained(max_shard_size=...)`
// splits a state dict: tensors in order, a new shard when the next tensor would
// push the current one past the limit, a tensor larger than the limit alone in
// its shard. Names `model-0000i-of-0000N.safetensors` (one shard:
// `model.safetensors`), and with more than one shard a
// `model.safetensors.index.json` with `metadata.total_size` (sum of tensor
// bytes) and `weight_map`, sorted keys, 2-space indent, as transformers writes
// it. Everything goes to a temporary sibling folder renamed into place by
// `finish()` (../fs/atomic.ts).

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError, fsError } from '../errors.js';
import { SafetensorsWriter, specBytes, type TensorSpec } from '../safetensors/writer.js';
import { commitTempFolder, createTempSibling, discardTempFolder } from '../fs/atomic.js';
import { INDEX_FILE, SINGLE_FILE } from './checkpoint.js';

export interface CheckpointWriterOptions {
  shardSizeBytes: number;
  metadata?: Record<string, string>;
  overwrite?: boolean;
}

export interface ShardPlan {
  file: string;
  tensors: TensorSpec[];
  bytes: number;
}

/** Assigns tensors to shards of at most `shardSizeBytes` data bytes (an oversized tensor gets its own). */
export function planShards(plan: TensorSpec[], shardSizeBytes: number): ShardPlan[] {
  if (!Number.isSafeInteger(shardSizeBytes) || shardSizeBytes <= 0) {
    throw new MoeforgeError('invalid_argument', `shard size ${shardSizeBytes} is not a positive number of bytes`);
  }
  const shards: { tensors: TensorSpec[]; bytes: number }[] = [];
  let current: { tensors: TensorSpec[]; bytes: number } | undefined;
  for (const spec of plan) {
    const bytes = specBytes(spec);
    if (!current || (current.tensors.length > 0 && current.bytes + bytes > shardSizeBytes)) {
      current = { tensors: [], bytes: 0 };
      shards.push(current);
    }
    current.tensors.push(spec);
    current.bytes += bytes;
  }
  if (shards.length === 0) shards.push({ tensors: [], bytes: 0 });
  const n = shards.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  return shards.map((s, i) => ({ ...s, file: n === 1 ? SINGLE_FILE : `model-${pad(i + 1)}-of-${pad(n)}.safetensors` }));
}

export class CheckpointWriter {
  readonly outFolder: string;
  /** Sibling of outFolder; extra files (config.json, tokenizer, README) go here too. */
  readonly tempFolder: string;
  readonly shards: readonly ShardPlan[];
  readonly totalBytes: number;
  bytesWritten = 0;
  private readonly options: CheckpointWriterOptions;
  private readonly order: { spec: TensorSpec; shard: number; bytes: number }[];
  private next = 0;
  private current: { index: number; writer: SafetensorsWriter } | undefined;
  private done = false;

  private constructor(outFolder: string, tempFolder: string, shards: ShardPlan[], options: CheckpointWriterOptions) {
    this.outFolder = outFolder;
    this.tempFolder = tempFolder;
    this.shards = shards;
    this.options = options;
    this.order = shards.flatMap((s, shard) => s.tensors.map((spec) => ({ spec, shard, bytes: specBytes(spec) })));
    this.totalBytes = shards.reduce((s, x) => s + x.bytes, 0);
  }

  static async create(outFolder: string, plan: TensorSpec[], options: CheckpointWriterOptions): Promise<CheckpointWriter> {
    const shards = planShards(plan, options.shardSizeBytes); // validates names, dtypes, shapes before touching disk
    const seen = new Set<string>();
    for (const t of plan) {
      if (seen.has(t.name)) throw new MoeforgeError('invalid_argument', 'tensor planned twice', { path: t.name });
      seen.add(t.name);
    }
    const tmp = await createTempSibling(outFolder, { overwrite: options.overwrite });
    return new CheckpointWriter(outFolder, tmp, shards, options);
  }

  /** Writes the next tensor of the plan, from bytes or a stream of chunks. */
  async writeTensor(name: string, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    if (this.done) throw new MoeforgeError('io_error', 'checkpoint writer is finished', { path: this.outFolder });
    const entry = this.order[this.next];
    if (!entry || entry.spec.name !== name) {
      throw new MoeforgeError(
        'invalid_argument',
        entry ? `written out of plan order: expected ${entry.spec.name}` : 'not in the plan (or written twice)',
        { path: name },
      );
    }
    const writer = await this.writerFor(entry.shard);
    let got = 0;
    const put = async (chunk: Uint8Array) => {
      got += chunk.byteLength;
      if (got > entry.bytes) {
        throw new MoeforgeError('shape_mismatch', `more than the ${entry.bytes} bytes its plan declares`, { path: name });
      }
      await writer.write(chunk);
      this.bytesWritten += chunk.byteLength;
    };
    if (data instanceof Uint8Array) await put(data);
    else for await (const chunk of data) await put(chunk);
    if (got !== entry.bytes) {
      throw new MoeforgeError('shape_mismatch', `${got} bytes written, its plan declares ${entry.bytes}`, { path: name });
    }
    this.next++;
    const following = this.order[this.next];
    if (!following || following.shard !== entry.shard) await this.closeCurrent();
  }

  /** Closes the shards, writes the index (when sharded) and renames the folder into place. */
  async finish(): Promise<void> {
    if (this.done) throw new MoeforgeError('io_error', 'checkpoint writer is finished', { path: this.outFolder });
    try {
      if (this.next !== this.order.length) {
        throw new MoeforgeError('invalid_argument', `only ${this.next} of ${this.order.length} planned tensors were written`, {
          path: this.order[this.next]!.spec.name,
        });
      }
      // A plan with no tensors still gets its (empty) single file.
      if (this.order.length === 0) await this.writerFor(0);
      await this.closeCurrent();
      if (this.shards.length > 1) {
        const weightMap: Record<string, string> = {};
        for (const e of [...this.order].sort((a, b) => (a.spec.name < b.spec.name ? -1 : a.spec.name > b.spec.name ? 1 : 0))) {
          weightMap[e.spec.name] = this.shards[e.shard]!.file;
        }
        const index = { metadata: { total_size: this.totalBytes }, weight_map: weightMap };
        const file = path.join(this.tempFolder, INDEX_FILE);
        try {
          await writeFile(file, `${JSON.stringify(index, null, 2)}\n`);
        } catch (e) {
          throw fsError(e, file, 'write');
        }
      }
      await commitTempFolder(this.tempFolder, this.outFolder, { overwrite: this.options.overwrite });
      this.done = true;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Stops and removes the temporary folder; nothing appears at outFolder. */
  async abort(): Promise<void> {
    this.done = true;
    const cur = this.current;
    this.current = undefined;
    if (cur) await cur.writer.abort().catch(() => undefined);
    await discardTempFolder(this.tempFolder);
  }

  private async writerFor(index: number): Promise<SafetensorsWriter> {
    if (this.current?.index === index) return this.current.writer;
    await this.closeCurrent();
    const shard = this.shards[index]!;
    const writer = await SafetensorsWriter.create(
      path.join(this.tempFolder, shard.file),
      shard.tensors,
      this.options.metadata ?? { format: 'pt' },
    );
    this.current = { index, writer };
    return writer;
  }

  private async closeCurrent(): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    await cur.writer.close();
  }
}
