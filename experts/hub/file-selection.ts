// Which files of a Hub repo a build needs. Pickled weights (*.bin, *.pt, *.pth,
// *.pkl) are never downloaded: loading a pickle runs arbitrary code.
import { CARRIED_FILES } from '../../core/tokenizer/files.js';

const NEEDED = new Set(['config.json', ...CARRIED_FILES]);

const PICKLE = /\.(bin|pt|pth|pkl|pickle|ckpt)$/i;

export function isPickle(name: string): boolean {
  return PICKLE.test(name);
}

export function isWeightFile(name: string): boolean {
  return /^[^/]+\.safetensors$/.test(name) || name === 'model.safetensors.index.json';
}

/** Top-level files only: nested folders (onnx/, original/, …) hold other formats. */
export function isNeededFile(name: string, includeWeights: boolean): boolean {
  if (name.includes('/') || isPickle(name)) return false;
  if (NEEDED.has(name)) return true;
  return includeWeights && isWeightFile(name);
}
