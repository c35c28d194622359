// Tiny models for the data-driven merge tests (issue 10): the llama-tiny golden as the
// base with a one-character-per-token tokenizer, and seeded perturbations of it as
// "fine-tuned" experts (benchmarks/synthetic/dense-model.ts), each with the tokenizer.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { charTokenizerFiles } from '../../benchmarks/synthetic/char-tokenizer.js';
import { writeSyntheticModel } from '../../benchmarks/synthetic/dense-model.js';
import type { TensorRole } from '../../core/roles.js';
import { golden } from './paths.js';

export const TINY = { hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2 };

export async function writeTokenizer(folder: string): Promise<void> {
  for (const [name, text] of Object.entries(charTokenizerFiles({ vocabSize: 128 }))) await writeFile(path.join(folder, name), text);
}

/** <dir>/base: llama-tiny + tokenizer. */
export async function writeBase(dir: string): Promise<string> {
  const base = path.join(dir, 'base');
  await mkdir(base, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(golden('llama-tiny'), f), path.join(base, f));
  await writeTokenizer(base);
  return base;
}

/** <dir>/<name>: base + scale·N(0,1) on the given roles (default every linear role). */
export async function writeExpert(dir: string, base: string, name: string, seed: number, scale = 0.05, roles?: TensorRole[]): Promise<string> {
  const folder = path.join(dir, name);
  await writeSyntheticModel(folder, { ...TINY, seed, perturb: { from: base, scale, seed, ...(roles ? { roles } : {}) } });
  await writeTokenizer(folder);
  return folder;
}
