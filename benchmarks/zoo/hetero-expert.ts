// The zoo's heterogeneous expert (issue 9, "the zoo gains an expert of a different
// architecture and size"): a qwen2-architecture model (Qwen2ForCausalLM, q/k/v
// biases in the checkpoint) 1.5× as wide as the llama zoo (hidden 96 vs 64),
// sharing the zoo tokenizer byte for byte, trained from scratch with a fixed seed
// on ONE zoo skill, caesar. Why caesar: the ciphers train fastest from scratch
// (a substitution on top of an aligned copy; facts needs ×5 the steps, zoo.ts), so
// the expert reaches 100% in a couple of minutes on 2 cores.
//
// The trainer (model.ts) is the engine's llama forward and has no attention
// biases; qwen2 = llama + q/k/v biases (transformers modeling_qwen2.py
// Qwen2Attention: q_proj/k_proj/v_proj bias=True, o_proj bias=False), so the
// checkpoint carries ZERO q/k/v biases: the model computes exactly what was
// trained, and the loader still exercises qwen2's bias path. rms_norm_eps and
// rope_theta take qwen2's defaults (1e-6, 1e6), used in training too.
//
// Usage: npx tsx benchmarks/zoo/hetero-expert.ts [outDir] [--steps N]
//   (default benchmarks/zoo/models-hetero/caesar-qwen2, 400 steps)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../core/backend.js';
import { isMoeforgeError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { syntheticConfig } from '../synthetic/dense-model.js';
import { installFastMatMulGradient } from './fast-grads.js';
import { allVariables, disposeParams, initParams, type ZooParams, type ZooShape } from './model.js';
import { testSet, trainSampler, zooTasks, type TaskName } from './tasks.js';
import { PAD_ID, ZOO_VOCAB_SIZE } from './tokenizer.js';
import { train } from './trainer.js';
import { exactMatch } from './zoo.js';
import { writeZooModel } from './writer.js';

export const HETERO_TASK: TaskName = 'caesar';
export const HETERO_EXPERT_NAME = 'caesar-qwen2';
export const HETERO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'models-hetero');

export const HETERO_SHAPE: ZooShape = {
  vocabSize: ZOO_VOCAB_SIZE,
  hiddenSize: 96,
  intermediateSize: 192,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  rmsNormEps: 1e-6,
  ropeTheta: 1000000,
};

export interface HeteroExpertOptions {
  /** The zoo's seed (task generators, held-out set); default 0 as the committed zoo. */
  seed?: number;
  steps?: number;
  batchSize?: number;
  log?: (line: string) => void;
}

export interface HeteroExpertResult {
  /** Greedy exact match on the zoo's held-out set of the task (200 questions). */
  accuracy: number;
  seconds: number;
  losses: { step: number; loss: number }[];
}

export function qwen2Config(s: ZooShape): Record<string, unknown> {
  const c = syntheticConfig({
    family: 'qwen2',
    hiddenSize: s.hiddenSize,
    intermediateSize: s.intermediateSize,
    numLayers: s.numLayers,
    vocabSize: s.vocabSize,
    numHeads: s.numHeads,
    numKvHeads: s.numKvHeads,
    seed: 0,
    tieWordEmbeddings: false,
  });
  Object.assign(c, { max_position_embeddings: 64, pad_token_id: PAD_ID, rms_norm_eps: s.rmsNormEps, rope_theta: s.ropeTheta });
  return Object.fromEntries(Object.entries(c).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Writes the qwen2 HF folder (qwen2 tensor names, zero q/k/v biases, zoo tokenizer). */
export function writeQwen2Expert(folder: string, p: ZooParams, card: string): Promise<void> {
  return writeZooModel(folder, p, card, { config: qwen2Config(p.shape), zeroQkvBias: true });
}

/** Trains the qwen2 caesar expert from scratch (every weight) and writes it to `folder`. */
export async function trainHeteroExpert(folder: string, options: HeteroExpertOptions = {}): Promise<HeteroExpertResult> {
  const seed = options.seed ?? 0;
  const steps = options.steps ?? 400;
  const batchSize = options.batchSize ?? 32;
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  await initBackend();
  installFastMatMulGradient();
  const task = zooTasks(seed)[HETERO_TASK];
  // The zoo's own held-out set (testSize 200, zoo.json): never trained on.
  const heldOut = testSet(task, seed, 200);
  const sample = trainSampler(task, heldOut, new Rng(seed).derive(`zoo/hetero/${HETERO_TASK}`));
  const p = initParams(HETERO_SHAPE, seed + 1);
  try {
    const losses = await train(p, {
      steps,
      batchSize,
      learningRate: 4e-3,
      variables: allVariables(p),
      sample,
      logEvery: 100,
      onLog: (s, l) => log(`${HETERO_EXPERT_NAME} step ${s}/${steps} loss ${l.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)}s)`),
    });
    const accuracy = exactMatch(p, heldOut, task.maxAnswerChars + 1);
    const seconds = (performance.now() - t0) / 1000;
    const card = [
      '---',
      'library_name: transformers',
      'tags: [moeforge, zoo, tiny, qwen2]',
      '---',
      `# zoo/${HETERO_EXPERT_NAME}`,
      '',
      `The zoo's heterogeneous expert: ${task.description}. A qwen2 model (hidden ${HETERO_SHAPE.hiddenSize}, ${HETERO_SHAPE.numLayers} layers, FFN ${HETERO_SHAPE.intermediateSize}) trained from scratch on this one skill; the zoo's llama experts are hidden 64.`,
      'The q/k/v biases are zero (the zoo trainer has none). Same tokenizer as benchmarks/zoo/models.',
      '',
      `Trained by \`npx tsx benchmarks/zoo/hetero-expert.ts --steps ${steps}\` (seed ${seed}, batch ${batchSize}, every weight): ${(100 * accuracy).toFixed(1)}% exact match on the zoo's 200 held-out ${HETERO_TASK} questions, ${seconds.toFixed(0)} s on 2 cores.`,
      '',
    ].join('\n');
    await writeQwen2Expert(folder, p, card);
    return { accuracy, seconds, losses };
  } finally {
    disposeParams(p);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let out = path.join(HETERO_DIR, HETERO_EXPERT_NAME);
  let steps = 400;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--steps') steps = Number(argv[++i]);
    else out = path.resolve(argv[i]!);
  }
  const r = await trainHeteroExpert(out, { steps, log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`${HETERO_EXPERT_NAME}: ${(100 * r.accuracy).toFixed(1)}% on held-out ${HETERO_TASK} in ${r.seconds.toFixed(0)} s → ${out}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(isMoeforgeError(e) ? `${e.toLine()}\n` : `${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = isMoeforgeError(e) ? 2 : 1;
  });
}
