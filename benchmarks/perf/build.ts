// `moeforge build` against plain fs on the same bytes (issue 4, "Bench").
//
// A 4-expert Mixtral from generated dense llama models (BF16, hidden 2048, 12 layers,
// vocab 32000: 1.34 GB each; the base is expert 0, the other experts are byte copies
// of it in their own folders), built twice: `gate_mode: random` (the pure streaming
// pipeline) and `gate_mode: hidden` (8 prompts through the base, layer-streamed under a
// 256 MiB engine limit), side by side with a plain FileHandle
// reading as many bytes from the input files as the build reads and writing as many
// as it writes, in 16 MiB slices. Each measurement runs in its own child process, so
// its peak RSS (`process.resourceUsage().maxRSS`) is its own; a second, smaller size
// (4 layers) shows whether peak RSS grows with the model. The page cache cannot be
// dropped here: the plain pass runs first and warms it for both.

import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildMoe, parseRecipeText, planFromRecipe } from '../../core/build/build.js';
import { createContainer } from '../../index.js';
import { charTokenizerFiles } from '../synthetic/char-tokenizer.js';
import { writeSyntheticModel } from '../synthetic/dense-model.js';
import type { PerfSuite } from './run.js';

const MiB = 1 << 20;
const SLICE = 16 * MiB;
const ENGINE_LIMIT = 256 * MiB;

interface ChildArgs {
  phase: 'build' | 'plain';
  gate?: string;
  dir: string;
  /** plain: bytes to read from the inputs and to write. */
  readBytes?: number;
  writeBytes?: number;
}

interface ChildResult {
  seconds: number;
  gateSeconds: number;
  maxRssBytes: number;
  readBytes: number;
  writeBytes: number;
}

const container = () => createContainer();

const PROMPTS = [
  ['def main():', 'import numpy as np'],
  ['12 + 35 =', 'solve for x'],
  ['Once upon a time', 'the dragon said'],
  ['Dear sir,', 'Kind regards,'],
];

function recipeText(dir: string, gate = 'hidden'): string {
  return `base_model: ${path.join(dir, 'e0')}
gate_mode: ${gate}
dtype: bfloat16
experts:
${PROMPTS.map((p, i) => `  - source_model: ${path.join(dir, `e${i}`)}\n    positive_prompts: ${JSON.stringify(p)}`).join('\n')}
`;
}

async function makeInputs(dir: string, layers: number): Promise<void> {
  const e0 = path.join(dir, 'e0');
  await writeSyntheticModel(e0, {
    family: 'llama',
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: layers,
    vocabSize: 32000,
    numHeads: 16,
    numKvHeads: 4,
    dtype: 'BF16',
    seed: 1,
  });
  for (const [f, text] of Object.entries(charTokenizerFiles({ vocabSize: 128 }))) await writeFile(path.join(e0, f), text);
  for (let i = 1; i < 4; i++) {
    const folder = path.join(dir, `e${i}`);
    await mkdir(folder);
    for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(e0, f), path.join(folder, f));
  }
}

async function plainPass(dir: string, readBytes: number, writeBytes: number): Promise<void> {
  const buf = new Uint8Array(SLICE);
  let left = readBytes;
  for (let i = 0; left > 0; i = (i + 1) % 4) {
    const fh = await open(path.join(dir, `e${i}`, 'model.safetensors'), 'r');
    const size = (await fh.stat()).size;
    for (let pos = 0; pos < size && left > 0; pos += SLICE) {
      const n = Math.min(SLICE, left, size - pos);
      await fh.read(buf, 0, n, pos);
      left -= n;
    }
    await fh.close();
  }
  const out = await open(path.join(dir, 'plain.bin'), 'w');
  for (let done = 0; done < writeBytes; done += SLICE) await out.write(buf, 0, Math.min(SLICE, writeBytes - done));
  await out.close();
}

async function childMain(args: ChildArgs): Promise<ChildResult> {
  const t0 = performance.now();
  let readBytes = args.readBytes ?? 0;
  let writeBytes = args.writeBytes ?? 0;
  let gateSeconds = 0;
  if (args.phase === 'plain') {
    await plainPass(args.dir, readBytes, writeBytes);
  } else {
    const c = container();
    const recipe = parseRecipeText(c, recipeText(args.dir, args.gate), 'bench.yml');
    const out = path.join(args.dir, `moe-${args.gate}`);
    const built = await buildMoe(c, recipe, out, { maxResidentBytes: ENGINE_LIMIT });
    await rm(out, { recursive: true, force: true });
    if (built.kind !== 'moe') throw new Error('the build benchmark builds a Mixtral');
    const { plan, result } = built;
    gateSeconds = result.gateSeconds;
    writeBytes = plan.totalBytes;
    readBytes = plan.tensors.filter((t) => t.op.kind === 'copy' || t.op.kind === 'expert').reduce((a, t) => a + t.bytes, 0);
  }
  return { seconds: (performance.now() - t0) / 1000, gateSeconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, readBytes, writeBytes };
}

const SELF = fileURLToPath(import.meta.url);

function runChild(args: ChildArgs): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...process.execArgv, SELF, '--build-child', JSON.stringify(args)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${args.phase} failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult);
    });
  });
}

async function measure(root: string, layers: number, rows: Record<string, number | string>): Promise<void> {
  const dir = path.join(root, `l${layers}`);
  await mkdir(dir);
  try {
    const tg = performance.now();
    await makeInputs(dir, layers);
    const genSeconds = (performance.now() - tg) / 1000;
    // Bytes the build reads and writes, from its plan (no weights read).
    const c = container();
    const plan = await planFromRecipe(c, parseRecipeText(c, recipeText(dir), 'bench.yml'), { maxResidentBytes: ENGINE_LIMIT });
    const readBytes = plan.tensors.filter((t) => t.op.kind === 'copy' || t.op.kind === 'expert').reduce((a, t) => a + t.bytes, 0);
    const plain = await runChild({ phase: 'plain', dir, readBytes, writeBytes: plan.totalBytes });
    await rm(path.join(dir, 'plain.bin'), { force: true });
    const random = await runChild({ phase: 'build', dir, gate: 'random' });
    const hidden = await runChild({ phase: 'build', dir, gate: 'hidden' });
    const GB = 1e9;
    const tag = `${layers}L`;
    rows[`${tag} input model GB (each of 4)`] = plan.inputs.base.description.weightBytes / GB;
    rows[`${tag} generate inputs s`] = genSeconds;
    rows[`${tag} bytes read GB`] = readBytes / GB;
    rows[`${tag} bytes written GB`] = plan.totalBytes / GB;
    rows[`${tag} plain fs read+write s`] = plain.seconds;
    rows[`${tag} build, random gates s`] = random.seconds;
    rows[`${tag} ratio random/plain`] = random.seconds / plain.seconds;
    rows[`${tag} build, hidden gates s`] = hidden.seconds;
    rows[`${tag}   of which gate computation s`] = hidden.gateSeconds;
    rows[`${tag} ratio hidden/plain`] = hidden.seconds / plain.seconds;
    rows[`${tag} plain peak RSS MB`] = plain.maxRssBytes / 1e6;
    rows[`${tag} build random peak RSS MB`] = random.maxRssBytes / 1e6;
    rows[`${tag} build hidden peak RSS MB`] = hidden.maxRssBytes / 1e6;
    rows[`${tag} planned peak memory MB`] = plan.peakMemoryBytes / 1e6;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const suite: PerfSuite = {
  name: 'build',
  description:
    'moeforge build (4-expert Mixtral, BF16 llama inputs, hidden gates layer-streamed) vs plain fs reading and writing the same byte counts; each in its own process (peak RSS its own)',
  async run() {
    const root = await mkdtemp(path.join(os.tmpdir(), 'moeforge-bench-build-'));
    const rows: Record<string, number | string> = {};
    try {
      const sizes = (process.env['MOEFORGE_BENCH_BUILD_LAYERS'] ?? '12,4').split(',').map(Number);
      for (const layers of sizes) await measure(root, layers, rows);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    rows['node'] = process.version;
    rows['cores'] = os.cpus().length;
    return rows;
  },
};

if (process.argv[2] === '--build-child' && process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  childMain(JSON.parse(process.argv[3]!) as ChildArgs)
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
}
