// Small models for engine tests: read a golden's tensors, change its config or
// weights, write the result as a new HF folder (config.json + model.safetensors, F32).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint } from '../../core/checkpoint/checkpoint.js';
import { encodeFloat32 } from '../../core/dtypes.js';
import { SafetensorsReader } from '../../core/safetensors/reader.js';
import { writeSafetensors } from '../../core/safetensors/writer.js';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export async function readConfig(folder: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
}

export async function readTensors(folder: string): Promise<Map<string, HostTensor>> {
  const ckpt = await Checkpoint.open(folder);
  const out = new Map<string, HostTensor>();
  for (const name of ckpt.names()) out.set(name, { shape: [...ckpt.header(name).shape], data: await ckpt.readFloat32(name) });
  await ckpt.close();
  return out;
}

export async function writeModel(folder: string, config: Record<string, unknown>, tensors: Map<string, HostTensor>): Promise<string> {
  await writeFile(path.join(folder, 'config.json'), JSON.stringify(config, null, 2));
  const names = [...tensors.keys()].sort();
  await writeSafetensors(
    path.join(folder, 'model.safetensors'),
    names.map((name) => {
      const t = tensors.get(name)!;
      return { name, dtype: 'F32' as const, shape: t.shape, data: encodeFloat32('F32', t.data) };
    }),
    { format: 'pt' },
  );
  return folder;
}

/** The golden batch and a reader of its expected outputs (close it when done). */
export async function goldenExpected(folder: string): Promise<{ inputIds: number[][]; expected: SafetensorsReader }> {
  const expected = await SafetensorsReader.open(path.join(folder, 'expected.safetensors'));
  const ids = Array.from((await expected.readTyped('input_ids')) as Int32Array);
  const t = ids.length / 2;
  return { inputIds: [ids.slice(0, t), ids.slice(t)], expected };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Rows [from, to) of the time axis of a [B, T, X] array, for batch row b. */
export function timeSlice(a: Float32Array, b: number, seqLen: number, width: number, from: number, to: number): Float32Array {
  return a.slice((b * seqLen + from) * width, (b * seqLen + to) * width);
}
