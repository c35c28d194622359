// Merging small in-memory tensors with any method (tests, the builder's small tensors):
// wraps arrays as chunk readers and collects the emitted chunks.
import type { ChunkReader, MergeMethod } from '../../core/plugins.js';
import type { TensorRole } from '../../core/roles.js';
import { Rng } from '../../core/rng.js';

export function arrayReader(values: Float32Array): ChunkReader {
  return async (start, end) => values.slice(start, end);
}

export interface InMemoryMerge {
  base?: Float32Array;
  models: Float32Array[];
  shape?: number[];
  global?: Record<string, unknown>;
  perModel?: Record<string, unknown>[];
  seed?: number;
  chunkSize?: number;
  tensorName?: string;
  role?: TensorRole;
  layer?: number;
  numLayers?: number;
}

export async function mergeArrays(method: MergeMethod, m: InMemoryMerge): Promise<Float32Array> {
  const numel = (m.base ?? m.models[0]!).length;
  const shape = m.shape ?? [numel];
  const out = new Float32Array(numel);
  let written = 0;
  const role: TensorRole = m.role ?? 'mlp_up';
  const tensorName = m.tensorName ?? 'tensor';
  await method.mergeTensor(
    {
      tensorName,
      role,
      layer: m.layer,
      numLayers: m.numLayers ?? 1,
      shape,
      numel,
      base: m.base ? arrayReader(m.base) : undefined,
      models: m.models.map(arrayReader),
      global: m.global ?? {},
      perModel: m.perModel ?? m.models.map(() => ({})),
      rng: new Rng(m.seed ?? 0).derive(tensorName),
      chunkSize: m.chunkSize ?? 1 << 16,
    },
    async (start, values) => {
      if (start !== written) throw new Error(`${method.name} wrote chunk at ${start}, expected ${written}`);
      out.set(values, start);
      written += values.length;
    },
  );
  if (written !== numel) throw new Error(`${method.name} wrote ${written} of ${numel} elements`);
  return out;
}
