// Model folders for build tests: golden tiny checkpoints copied with a character
// tokenizer (the goldens ship none), and the public container with every built-in plugin.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { BuildOutcome, MoeBuildOutcome } from '../../core/build/build.js';
import { charTokenizerFiles } from '../../benchmarks/synthetic/char-tokenizer.js';
import { writeSyntheticModel } from '../../benchmarks/synthetic/dense-model.js';
import { createContainer } from '../../index.js';
import { golden, type GOLDEN_MODELS } from './paths.js';

/** The composition root's container: every built-in plugin. */
export function buildTestContainer(): DependencyContainer {
  return createContainer();
}

export async function addCharTokenizer(folder: string): Promise<void> {
  for (const [f, text] of Object.entries(charTokenizerFiles({ vocabSize: 128 }))) await writeFile(path.join(folder, f), text);
}

/** A copy of a golden model (config + weights) with a tokenizer, at dir/name. */
export async function goldenCopy(dir: string, model: (typeof GOLDEN_MODELS)[number], name: string): Promise<string> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(golden(model), f), path.join(folder, f));
  await addCharTokenizer(folder);
  return folder;
}

/** The outcome of a build that must be Mixtral-style (buildMoe returns a union with heterogeneous builds). */
export function moeOutcome(o: BuildOutcome): MoeBuildOutcome {
  if (o.kind !== 'moe') throw new Error(`expected a Mixtral-style build, got a ${o.kind} one`);
  return o;
}

/**
 * A heterogeneous expert for the goldens (issue 9 tests): a qwen2 model of another width
 * and depth (hidden 32, 2 layers) with llama-tiny's vocabulary and the same tokenizer, at dir/narrow.
 */
export async function narrowQwen2(dir: string): Promise<string> {
  const folder = path.join(dir, 'narrow');
  await writeSyntheticModel(folder, { family: 'qwen2', hiddenSize: 32, intermediateSize: 48, numLayers: 2, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 7, scale: 0.2 });
  await addCharTokenizer(folder);
  return folder;
}
