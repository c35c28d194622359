// The one table of supported families.
import { MoeforgeError } from '../errors.js';
import type { ModelFamily } from '../config/types.js';
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import { mixtral } from './mixtral.js';
import { qwen2 } from './qwen2.js';
import { qwen2Moe } from './qwen2-moe.js';
import { qwen3 } from './qwen3.js';
import { qwen3Moe } from './qwen3-moe.js';
import type { ArchitectureSpec } from './types.js';

export const ARCHITECTURES: Readonly<Record<ModelFamily, ArchitectureSpec>> = Object.freeze({
  llama,
  mistral,
  qwen2,
  qwen3,
  mixtral,
  qwen2_moe: qwen2Moe,
  qwen3_moe: qwen3Moe,
});

export function isModelFamily(name: unknown): name is ModelFamily {
  return typeof name === 'string' && Object.hasOwn(ARCHITECTURES, name);
}

/** The spec of a family; anything else is `unknown_architecture`. */
export function getArchitecture(family: ModelFamily | string): ArchitectureSpec {
  if (!isModelFamily(family)) {
    throw new MoeforgeError(
      'unknown_architecture',
      `model_type ${JSON.stringify(family)} is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`,
    );
  }
  return ARCHITECTURES[family];
}
