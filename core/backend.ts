// The tfjs backend the forward engine runs on. wasm (SIMD) is the default: it is
// the fastest backend that loads everywhere offline (DESIGN.md §5); the plain JS
// cpu backend is the fallback; `tensorflow` (libtensorflow through
// @tensorflow/tfjs-node-gpu) only when that optional dependency was built.
//
// tfjs comes in through '@tensorflow/tfjs', not '@tensorflow/tfjs-core' alone:
// the full package registers every gradient and the chained `t.op()` methods
// that learned-gate training needs (tfjs-core alone registers no gradients), and
// it re-exports the same deduplicated tfjs-core instance the backends register into.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MoeforgeError } from './errors.js';

export { tf };

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';
export const BACKEND_NAMES: readonly BackendName[] = ['wasm', 'cpu', 'tensorflow'];

export interface BackendInfo {
  name: BackendName;
  simd?: boolean;
  threads?: number;
  detail: string;
}

let current: BackendInfo | undefined;
let wasmPathsSet = false;

async function tryWasm(): Promise<BackendInfo | undefined> {
  if (!wasmPathsSet) {
    // The .wasm binaries ship in the package's dist/; resolve them from this
    // file so it works from the repo (tsx) and from an installed dist/.
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    setWasmPaths(path.join(dir, 'dist') + path.sep);
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend('wasm').catch(() => false);
  if (!ok) return undefined;
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threaded = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return {
    name: 'wasm',
    simd,
    threads: threaded ? undefined : 1,
    detail: `tfjs ${tf.version_core} wasm${simd ? ' SIMD' : ''}${threaded ? ' multi-threaded' : ', single-threaded'}`,
  };
}

async function tryCpu(): Promise<BackendInfo | undefined> {
  const ok = await tf.setBackend('cpu').catch(() => false);
  if (!ok) return undefined;
  await tf.ready();
  return { name: 'cpu', threads: 1, detail: `tfjs ${tf.version_core} cpu (plain JavaScript)` };
}

async function tryTensorflow(): Promise<BackendInfo | undefined> {
  try {
    // An optionalDependency that is usually not built (its install downloads
    // libtensorflow); the name is in a variable so bundlers and tsc leave it alone.
    const name = '@tensorflow/tfjs-node-gpu';
    await import(name);
  } catch {
    return undefined;
  }
  const ok = await tf.setBackend('tensorflow').catch(() => false);
  if (!ok) return undefined;
  await tf.ready();
  return { name: 'tensorflow', detail: `tfjs ${tf.version_core} tensorflow (libtensorflow via tfjs-node-gpu)` };
}

const TRY: Record<BackendName, () => Promise<BackendInfo | undefined>> = {
  wasm: tryWasm,
  cpu: tryCpu,
  tensorflow: tryTensorflow,
};

/**
 * Selects the backend (idempotent). Without `preferred`: the one already in use,
 * else wasm, else cpu. With `preferred`: that one or an invalid_argument error.
 */
export async function initBackend(preferred?: BackendName): Promise<BackendInfo> {
  if (preferred !== undefined && !BACKEND_NAMES.includes(preferred)) {
    throw new MoeforgeError('invalid_argument', `unknown backend '${String(preferred)}' (expected one of ${BACKEND_NAMES.join(', ')})`, {
      path: '--backend',
    });
  }
  // Callers may race (several models loading at once): they all wait on the one
  // setup under way instead of switching backends under each other's tensors.
  while (pending) await pending.catch(() => undefined);
  if (current && (preferred === undefined || current.name === preferred)) return current;
  pending = selectBackend(preferred);
  try {
    current = await pending;
    return current;
  } finally {
    pending = undefined;
  }
}

let pending: Promise<BackendInfo> | undefined;

async function selectBackend(preferred: BackendName | undefined): Promise<BackendInfo> {
  if (preferred !== undefined) {
    const info = await TRY[preferred]();
    if (!info) {
      throw new MoeforgeError('invalid_argument', `backend '${preferred}' is not available on this machine`, { path: '--backend' });
    }
    return info;
  }
  const info = (await tryWasm()) ?? (await tryCpu());
  if (!info) throw new MoeforgeError('invalid_argument', 'no tfjs backend could be initialised (wasm and cpu both failed)');
  return info;
}

/** The backend in use, if one was initialised. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
