// A whole dense model in memory as float32, by HF tensor name in HF layout: what the
// calibration passes differentiate. Models only: a model whose float32 weights times
// the copies a method holds (weights + gradients = 2; DivMerge holds the base, every
// task vector and the gradients) exceed the limit gets one out_of_memory error
// naming the limit, instead of a swap storm or a wasm heap abort.
import path from 'node:path';
import { initBackend } from '../../core/backend.js';
import { getArchitecture, parseTensorName } from '../../core/architectures/index.js';
import { Checkpoint } from '../../core/checkpoint/checkpoint.js';
import { normalizeConfig } from '../../core/config/normalize.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import { MoeforgeError } from '../../core/errors.js';
import { checkDense } from './lm-graph.js';

/** Default memory limit of a calibration pass: half the wasm backend's 4 GiB heap. */
export const DEFAULT_CALIBRATION_MAX_BYTES = 2 * 1024 ** 3;

export interface ModelWeights {
  ref: string;
  folder: string;
  config: NormalizedConfig;
  /** Tensor names in checkpoint order. */
  names: string[];
  shapes: Map<string, number[]>;
  values: Map<string, Float32Array>;
  /** The decoder layer of each tensor (undefined: embeddings, final norm, lm_head). */
  layers: Map<string, number | undefined>;
}

/** float32 bytes of a checkpoint's tensors (headers only). */
export function float32Bytes(checkpoint: Checkpoint): number {
  return checkpoint.names().reduce((s, n) => s + 4 * checkpoint.header(n).numel, 0);
}

export function checkMemory(ref: string, bytes: number, limit: number, what: string): void {
  if (bytes > limit) {
    throw new MoeforgeError(
      'out_of_memory',
      `${what} needs ${(bytes / 1024 ** 2).toFixed(1)} MiB of float32 tensors, over the ${(limit / 1024 ** 2).toFixed(1)} MiB limit (calibration_max_bytes)`,
      { path: ref },
    );
  }
}

/** Loads every tensor; `copies` × the float32 size must fit in `limitBytes`. */
export async function loadModelWeights(folder: string, ref: string, opts: { limitBytes?: number; copies?: number } = {}): Promise<ModelWeights> {
  await initBackend(); // its callers turn these weights into tensors
  const checkpoint = await Checkpoint.open(folder);
  try {
    const config = normalizeConfig(checkpoint.rawConfig, path.join(folder, 'config.json'));
    checkDense(config, ref);
    checkMemory(ref, float32Bytes(checkpoint) * (opts.copies ?? 2), opts.limitBytes ?? DEFAULT_CALIBRATION_MAX_BYTES, 'a calibration pass');
    const arch = getArchitecture(config.modelType);
    const names = checkpoint.names();
    const shapes = new Map<string, number[]>();
    const values = new Map<string, Float32Array>();
    const layers = new Map<string, number | undefined>();
    for (const n of names) {
      const slot = parseTensorName(arch, n);
      if (!slot) throw new MoeforgeError('unknown_architecture', `tensor is not part of the ${arch.family} layout`, { path: `${ref}: ${n}` });
      shapes.set(n, [...checkpoint.header(n).shape]);
      values.set(n, await checkpoint.readFloat32(n));
      layers.set(n, slot.layer);
    }
    return { ref, folder, config, names, shapes, values, layers };
  } finally {
    await checkpoint.close();
  }
}
