// Chunk iteration shared by the merge kernels. A tensor is visited in consecutive
// element ranges aligned to whole rows (the last dimension's neighbours: DELLA ranks
// and the 1bit / NeuroMerging row statistics need complete rows), so memory stays at
// chunkSize × (models + 1) floats whatever the tensor size.
import type { ChunkReader, MergeTensorInput } from '../../core/plugins.js';

/** Row length used for per-row statistics: the product of all but the first dimension (1-D: the whole tensor). */
export function rowLength(shape: number[], numel: number): number {
  if (shape.length < 2) return Math.max(1, numel);
  return Math.max(1, shape.slice(1).reduce((a, b) => a * b, 1));
}

/** Elements per chunk: a multiple of the row length, at least one row. */
export function alignedChunk(chunkSize: number, cols: number): number {
  return Math.max(cols, Math.floor(chunkSize / cols) * cols);
}

export interface DeltaChunk {
  start: number;
  base: Float32Array;
  /** model − base, one per model, in `models` order (the model chunk, overwritten in place). */
  deltas: Float32Array[];
}

/** Visits the task vectors (model − base) chunk by chunk. */
export async function forEachDeltaChunk(
  input: Pick<MergeTensorInput, 'numel' | 'shape' | 'chunkSize'>,
  base: ChunkReader,
  models: ChunkReader[],
  visit: (chunk: DeltaChunk) => void | Promise<void>,
): Promise<void> {
  const step = alignedChunk(input.chunkSize, rowLength(input.shape, input.numel));
  // One task-vector buffer per model, reused for every chunk (the visitor is done with it when it returns).
  const scratch = models.map(() => new Float32Array(Math.min(step, input.numel)));
  for (let start = 0; start < input.numel; start += step) {
    const end = Math.min(input.numel, start + step);
    const [b, ...ms] = await Promise.all([base(start, end), ...models.map((m) => m(start, end))]);
    const deltas = ms.map((m, j) => {
      // Readers may hand out shared buffers; never write into them.
      const d = scratch[j]!.subarray(0, end - start);
      const x = m!;
      const y = b!;
      for (let i = 0; i < d.length; i++) d[i] = x[i]! - y[i]!;
      return d;
    });
    await visit({ start, base: b!, deltas });
  }
}

/** Visits the raw model chunks (no base), for methods without task vectors. */
export async function forEachModelChunk(
  input: Pick<MergeTensorInput, 'numel' | 'shape' | 'chunkSize'>,
  readers: ChunkReader[],
  visit: (start: number, values: Float32Array[]) => void | Promise<void>,
): Promise<void> {
  const step = alignedChunk(input.chunkSize, rowLength(input.shape, input.numel));
  for (let start = 0; start < input.numel; start += step) {
    const end = Math.min(input.numel, start + step);
    const values = await Promise.all(readers.map((r) => r(start, end)));
    await visit(start, values);
  }
}
