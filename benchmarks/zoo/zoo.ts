// `moeforge zoo`: the expert zoo, trained from scratch with a fixed seed.
//
// Recipe (and why): a MoE built from dense experts keeps each expert's FFN but
// has ONE copy of everything else (attention, embeddings, norms, LM head), so
// an expert only survives the merge intact if it never changed those. The zoo
// therefore fine-tunes each expert's MLP only, from a base whose attention,
// embeddings, norms and head are frozen: with `shared_weights: base` the MoE's
// shared weights equal every expert's bit for bit, and routing (the gate) is
// the only place the MoE can lose accuracy. Only the LAST layer's MLP is tuned
// (`expertLayers`, default the top layer): mergekit's `hidden` gate for layer 0
// reads the residual stream entering layer 0, the token embedding alone, which
// cannot tell a letter in `rot:` from one in `mir:`, so experts that differed
// in layer 0 would be routed by character, not by task. With identical layer-0
// MLPs that choice is harmless, and the top layer's router reads a state that
// attention has already mixed with the task prefix. Full fine-tunes would make
// the shared-weight merge lossy by construction.
//
// 1. base: every weight trained to COPY the input in each task's format
//    (tasks.ts copySample): it reads the formats and has the aligned-copy
//    attention the ciphers use, but no skill (far below on every task).
// 2. experts: the base with the top MLP trained on one task each; everything
//    else byte-identical to the base's.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../core/backend.js';
import { fsError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { installFastMatMulGradient } from './fast-grads.js';
import { allVariables, cloneParams, DEFAULT_SHAPE, disposeParams, initParams, mlpVariables, type ZooParams, type ZooShape } from './model.js';
import { zooSuiteYaml } from './suite.js';
import { copySample, TASK_NAMES, testSet, trainSampler, zooTasks, type Sample, type TaskName } from './tasks.js';
import { greedyAnswers, train } from './trainer.js';
import { writeZooModel } from './writer.js';

export interface ZooOptions {
  seed?: number;
  /** Steps of the base's copy pretraining (default 500). */
  baseSteps?: number;
  /** Steps of each expert's MLP fine-tune (default 450; facts gets FACTS_STEP_FACTOR times as many). */
  expertSteps?: number;
  batchSize?: number;
  /** Held-out questions per task (facts: the whole table). */
  testSize?: number;
  shape?: ZooShape;
  /** Layers whose MLP the experts tune (default: the last layer only). */
  expertLayers?: number[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/**
 * Memorising 48 arbitrary facts takes more passes than learning a substitution
 * map (measured: 450 steps left the facts expert at 60%, loss still falling).
 */
export const FACTS_STEP_FACTOR = 5;

export interface ZooResult {
  /** Greedy exact match on each task's held-out set: model → task → accuracy. */
  accuracy: Record<string, Record<TaskName, number>>;
  seconds: number;
  /** Loss log per phase (base, then each expert). */
  losses: Record<string, { step: number; loss: number }[]>;
}

/** Greedy exact match on a test set (the trainer's own forward, no KV cache). */
export function exactMatch(p: ZooParams, samples: Sample[], maxNewTokens: number): number {
  let right = 0;
  for (let i = 0; i < samples.length; i += 64) {
    const chunk = samples.slice(i, i + 64);
    const answers = greedyAnswers(p, chunk.map((s) => s.question), maxNewTokens);
    answers.forEach((a, j) => (right += a === chunk[j]!.answer ? 1 : 0));
  }
  return right / samples.length;
}

function modelCard(name: string, what: string, o: { seed: number; baseSteps: number; expertSteps: number; batchSize: number }): string {
  return [
    '---',
    'library_name: transformers',
    'tags: [moeforge, zoo, tiny]',
    '---',
    `# zoo/${name}`,
    '',
    `${what}`,
    '',
    `Trained by \`moeforge zoo --steps ${o.baseSteps} --expert-steps ${o.expertSteps} --seed ${o.seed}\` (base ${o.baseSteps} copy steps, experts ${o.expertSteps} MLP-only steps, facts ×${FACTS_STEP_FACTOR}, batch ${o.batchSize}).`,
    'Character-level llama (GQA); see benchmarks/zoo/zoo.ts for the recipe.',
    '',
  ].join('\n');
}

export async function generateZoo(outDir: string, options: ZooOptions = {}): Promise<ZooResult> {
  const o = {
    seed: options.seed ?? 0,
    baseSteps: options.baseSteps ?? 500,
    expertSteps: options.expertSteps ?? 450,
    batchSize: options.batchSize ?? 32,
    testSize: options.testSize ?? 200,
  };
  const shape = options.shape ?? DEFAULT_SHAPE;
  const expertLayers = options.expertLayers ?? [shape.numLayers - 1];
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  await initBackend();
  installFastMatMulGradient();
  const tasks = zooTasks(o.seed);
  const tests = Object.fromEntries(TASK_NAMES.map((n) => [n, testSet(tasks[n], o.seed, o.testSize)])) as Record<TaskName, Sample[]>;
  const maxNew = Object.fromEntries(TASK_NAMES.map((n) => [n, tasks[n].maxAnswerChars + 1])) as Record<TaskName, number>;
  const evalAll = (p: ZooParams) => Object.fromEntries(TASK_NAMES.map((n) => [n, exactMatch(p, tests[n], maxNew[n])])) as Record<TaskName, number>;
  const fmt = (acc: Record<TaskName, number>) => TASK_NAMES.map((n) => `${n} ${(100 * acc[n]).toFixed(1)}%`).join(', ');
  const accuracy: ZooResult['accuracy'] = {};
  const losses: ZooResult['losses'] = {};
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)}s`;

  // 1. base: every weight, copying in every format; never a held-out question
  const rng = new Rng(o.seed).derive('zoo/train');
  const heldOut = new Set(TASK_NAMES.flatMap((n) => tests[n].map((x) => x.question)));
  const base = initParams(shape, o.seed);
  losses.base = await train(base, {
    steps: o.baseSteps,
    batchSize: o.batchSize,
    learningRate: 4e-3,
    variables: allVariables(base),
    sample: () => {
      for (;;) {
        const x = copySample(rng);
        if (!heldOut.has(x.question)) return x;
      }
    },
    logEvery: 100,
    onLog: (s, l) => log(`base step ${s}/${o.baseSteps} loss ${l.toFixed(4)} (${elapsed()})`),
  });
  accuracy.base = evalAll(base);
  log(`base: ${fmt(accuracy.base)}`);
  await writeZooModel(path.join(outDir, 'base'), base, modelCard('base', `The zoo base: copies its input in every task format (${TASK_NAMES.join(', ')}); has none of the skills.`, o));

  // 2. experts: the top MLP only, one task each
  for (const name of TASK_NAMES) {
    const expert = cloneParams(base);
    const erng = new Rng(o.seed).derive(`zoo/expert/${name}`);
    const sample = trainSampler(tasks[name], tests[name], erng);
    const steps = name === 'facts' ? o.expertSteps * FACTS_STEP_FACTOR : o.expertSteps;
    losses[name] = await train(expert, {
      steps,
      batchSize: o.batchSize,
      learningRate: 4e-3,
      variables: mlpVariables(expert, expertLayers),
      sample,
      logEvery: 100,
      onLog: (s, l) => log(`${name} step ${s}/${steps} loss ${l.toFixed(4)} (${elapsed()})`),
    });
    accuracy[name] = evalAll(expert);
    log(`${name}: ${fmt(accuracy[name])}`);
    await writeZooModel(
      path.join(outDir, name),
      expert,
      modelCard(name, `A zoo expert: ${tasks[name].description}. Only the MLP of layer(s) ${expertLayers.join(', ')} differs from zoo/base.`, o),
    );
    disposeParams(expert);
  }
  disposeParams(base);

  // 3. suite + held-out test sets + manifest
  const dataDir = path.join(outDir, 'data');
  await mkdir(dataDir, { recursive: true });
  for (const n of TASK_NAMES) {
    const file = path.join(dataDir, `${n}.test.jsonl`);
    await writeFile(file, tests[n].map((s) => JSON.stringify(s)).join('\n') + '\n').catch((e: unknown) => {
      throw fsError(e, file, 'write');
    });
  }
  await writeFile(path.join(outDir, 'zoo-suite.yml'), zooSuiteYaml(tasks, o.seed));
  const seconds = (performance.now() - t0) / 1000;
  const manifest = { seed: o.seed, expertLayers, baseSteps: o.baseSteps, expertSteps: o.expertSteps, batchSize: o.batchSize, testSize: o.testSize, shape, seconds, accuracy, tasks: Object.fromEntries(TASK_NAMES.map((n) => [n, tasks[n].description])) };
  await writeFile(path.join(outDir, 'zoo.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { accuracy, seconds, losses };
}
