// Checks a checkpoint's tensor headers against its config: every expected tensor
// present with its shape, stored in a floating dtype, and nothing else.
import type { NormalizedConfig } from '../config/types.js';
import { expectedTensors } from './expected.js';
import { tensorName } from './names.js';
import { getArchitecture } from './registry.js';

export interface ValidationProblem {
  kind: 'missing' | 'shape' | 'extra' | 'dtype';
  tensor: string;
  message: string;
  /**
   * 'error': the checkpoint cannot be used as this config says (missing tensor, wrong shape,
   * non-float dtype). 'warning': transformers loads it anyway and ignores the tensor (an
   * unexpected key; `lm_head.weight` beside `tie_word_embeddings: true`).
   */
  severity: 'error' | 'warning';
}

export interface TensorHeader {
  dtype: string;
  shape: number[];
}

/** safetensors dtypes a weight may be stored in (moeforge decodes all of them to float32). */
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Problems in the order of the expected tensors, then extras in name order.
 *
 * Tied embeddings: with `tie_word_embeddings: true` transformers points lm_head at
 * `model.embed_tokens.weight` after loading (PreTrainedModel.tie_weights), so a stored
 * `lm_head.weight` is never read. It is reported as an 'extra' warning, not an error:
 * such checkpoints exist and load, but whatever that tensor holds is ignored.
 */
export function validateTensors(config: NormalizedConfig, tensors: ReadonlyMap<string, TensorHeader>): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  const expected = expectedTensors(config);
  const known = new Set<string>();
  for (const t of expected) {
    known.add(t.name);
    const got = tensors.get(t.name);
    if (!got) {
      const why = t.slot.role === 'lm_head' ? ' (tie_word_embeddings is false)' : '';
      problems.push({ kind: 'missing', tensor: t.name, message: `missing tensor, expected shape ${shapeText(t.shape)}${why}`, severity: 'error' });
      continue;
    }
    if (got.shape.length !== t.shape.length || got.shape.some((n, i) => n !== t.shape[i])) {
      problems.push({
        kind: 'shape',
        tensor: t.name,
        message: `expected shape ${shapeText(t.shape)}, got ${shapeText(got.shape)}`,
        severity: 'error',
      });
    }
    if (!FLOAT_DTYPES.has(got.dtype)) {
      problems.push({ kind: 'dtype', tensor: t.name, message: `stored as ${got.dtype}, expected a floating-point dtype`, severity: 'error' });
    }
  }
  const lmHead = config.tieWordEmbeddings ? tensorName(getArchitecture(config.modelType), { role: 'lm_head' }) : undefined;
  for (const name of [...tensors.keys()].filter((n) => !known.has(n)).sort()) {
    problems.push({
      kind: 'extra',
      tensor: name,
      message:
        name === lmHead
          ? 'ignored: tie_word_embeddings is true, so transformers uses model.embed_tokens.weight as the LM head'
          : `not a tensor of ${config.architecture} with this config; transformers would ignore it`,
      severity: 'warning',
    });
  }
  return problems;
}
