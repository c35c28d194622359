// DivMerge's objective and optimiser (Touayouch et al. 2025, arXiv 2509.02108): task-arithmetic
// coefficients c (one per model, or one per model per layer group) chosen by Adam to minimise
//   J(c) = mean over experts i of the mean over tokens of JS(p_i(x) ‖ p_c(x)),
// x running over expert i's inputs (its unlabelled prompts followed by its own greedy
// continuation), p_i the expert's next-token distribution (fixed), p_c the distribution of
// the merged model base + Σ_i c_i δ_i, evaluated by the differentiable pass (lm-graph.ts).
// JS(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q) / 2, in nats.
import { tf } from '../../core/backend.js';
import { initBackend } from '../../core/backend.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import { lmLogits } from './lm-graph.js';
import { passProgress } from './progress.js';

export interface Teacher {
  /** Token rows the merged model is compared on. */
  rows: number[][];
  /** The expert's logits on each row, [T, V]. */
  logits: Float32Array[];
}

export interface DivergenceProblem {
  config: NormalizedConfig;
  names: string[];
  shapes: Map<string, number[]>;
  base: Map<string, Float32Array>;
  /** Task vectors δ_i = θ_i − base, per model. */
  deltas: Map<string, Float32Array>[];
  /** Coefficient group of each tensor (0 with one coefficient per model). */
  groupOf: (name: string) => number;
  groups: number;
  teachers: Teacher[];
}

export interface DivergenceResult {
  /** [model][group]. */
  coefficients: number[][];
  before: number;
  after: number;
  /** J after each step. */
  history: number[];
}

/** JS divergence (nats) per position between logits `p` and `q`, both [N, V] → [N]. */
export function jsPerPosition(pLogits: tf.Tensor2D, qLogits: tf.Tensor2D): tf.Tensor1D {
  const logP = tf.logSoftmax(pLogits);
  const logQ = tf.logSoftmax(qLogits);
  const p = tf.exp(logP);
  const q = tf.exp(logQ);
  const logM = tf.log(tf.add(tf.mul(tf.add(p, q), 0.5), 1e-30));
  const kl = (x: tf.Tensor, logX: tf.Tensor) => tf.sum(tf.mul(x, tf.sub(logX, logM)), -1); // [T]
  return tf.mul(tf.add(kl(p, logP), kl(q, logQ)), 0.5) as tf.Tensor1D;
}

/** Mean JS divergence (nats) over the positions of [T, V] logits. */
export function jsDivergence(pLogits: tf.Tensor2D, qLogits: tf.Tensor2D): tf.Scalar {
  return tf.mean(jsPerPosition(pLogits, qLogits));
}

/** A teacher's rows right-padded into one batch: ids [B][T], logits [B*T, V], position weights [B*T] (mean over each row, then over rows). */
interface PaddedTeacher {
  ids: number[][];
  logits: tf.Tensor2D;
  weights: tf.Tensor1D;
}

function padTeacher(t: Teacher, vocab: number): PaddedTeacher {
  const len = Math.max(...t.rows.map((r) => r.length));
  const b = t.rows.length;
  const logits = new Float32Array(b * len * vocab);
  const weights = new Float32Array(b * len);
  const ids = t.rows.map((r, k) => {
    logits.set(t.logits[k]!, k * len * vocab);
    for (let j = 0; j < r.length; j++) weights[k * len + j] = 1 / (r.length * b);
    return [...r, ...new Array<number>(len - r.length).fill(0)];
  });
  return { ids, logits: tf.tensor2d(logits, [b * len, vocab]), weights: tf.tensor1d(weights) };
}

/** J(c) for coefficient tensor c [models, groups] (differentiable in c). */
function objective(prob: DivergenceProblem, c: tf.Tensor2D, baseT: Map<string, tf.Tensor>, deltaT: Map<string, tf.Tensor>[], teacherT: PaddedTeacher[]): tf.Scalar {
  // Slices, not unstack: unstack's gradient fails when some of its outputs go unused.
  const cache = new Map<string, tf.Tensor>();
  const coeff = (i: number, g: number) => {
    const key = `${i}/${g}`;
    let v = cache.get(key);
    if (!v) cache.set(key, (v = tf.reshape(tf.slice(c, [i, g], [1, 1]), [])));
    return v;
  };
  const merged = new Map<string, tf.Tensor>();
  for (const n of prob.names) {
    let w = baseT.get(n)!;
    const g = prob.groupOf(n);
    deltaT.forEach((d, i) => (w = tf.add(w, tf.mul(coeff(i, g), d.get(n)!))));
    merged.set(n, w);
  }
  // One batched pass per teacher (right padding, padded positions weighted 0).
  const per = teacherT.map((t) => tf.sum(tf.mul(jsPerPosition(t.logits, lmLogits(prob.config, (n) => merged.get(n)!, t.ids)), t.weights)));
  return tf.mean(tf.stack(per)) as tf.Scalar;
}

/** Adam on the coefficients from `init` (default 1/models everywhere). */
export async function optimiseCoefficients(
  prob: DivergenceProblem,
  opts: { steps: number; learningRate: number; init?: number[][]; label?: string },
): Promise<DivergenceResult> {
  await initBackend();
  const n = prob.deltas.length;
  const init = opts.init ?? Array.from({ length: n }, () => new Array<number>(prob.groups).fill(1 / n));
  const shape = (name: string) => prob.shapes.get(name)!;
  const baseT = new Map(prob.names.map((nm) => [nm, tf.tensor(prob.base.get(nm)!, shape(nm))]));
  const deltaT = prob.deltas.map((d) => new Map(prob.names.map((nm) => [nm, tf.tensor(d.get(nm)!, shape(nm))])));
  const teacherT = prob.teachers.map((t) => padTeacher(t, prob.config.vocabSize));
  const c = tf.variable(tf.tensor2d(init.flat(), [n, prob.groups]), true);
  const optimizer = tf.train.adam(opts.learningRate);
  const value = async () => {
    const j = tf.tidy(() => objective(prob, c, baseT, deltaT, teacherT));
    const v = (await j.data())[0]!;
    j.dispose();
    return v;
  };
  const bar = passProgress(opts.label ?? 'divmerge', opts.steps);
  const history: number[] = [];
  try {
    const before = await value();
    for (let s = 0; s < opts.steps; s++) {
      const loss = optimizer.minimize(() => objective(prob, c, baseT, deltaT, teacherT), true, [c]);
      history.push((await loss!.data())[0]!);
      loss!.dispose();
      bar.tick();
    }
    const after = await value();
    const flat = Array.from(await c.data());
    return { coefficients: Array.from({ length: n }, (_, i) => flat.slice(i * prob.groups, (i + 1) * prob.groups)), before, after, history };
  } finally {
    bar.stop();
    optimizer.dispose();
    c.dispose();
    for (const t of baseT.values()) t.dispose();
    for (const d of deltaT) for (const t of d.values()) t.dispose();
    for (const t of teacherT) tf.dispose([t.logits, t.weights]);
  }
}
