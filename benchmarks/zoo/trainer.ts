// The zoo's training loop: Adam over a chosen subset of the weights (all of
// them, or the MLPs only), batches of fresh samples, loss on the answer and its
// EOS only (the question is given, not predicted), linear warm-up then cosine
// decay of the learning rate.
import { tf } from '../../core/backend.js';
import type { Sample } from './tasks.js';
import { BOS_ID, EOS_ID, PAD_ID, decodeIds, encodeChars } from './tokenizer.js';
import { forwardLogits, maskedCrossEntropy, passConstants, type PassConstants, type ZooParams } from './model.js';

export interface TrainOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  /** Steps of linear warm-up (default steps / 20). */
  warmup?: number;
  /** The weights to train (the rest stay frozen). */
  variables: tf.Variable[];
  /** Draws one training sample. */
  sample: () => Sample;
  /** Called every `logEvery` steps (and at the last one) with the mean loss since the last call. */
  onLog?: (step: number, loss: number) => void;
  logEvery?: number;
}

export interface Batch {
  inputs: number[][]; // [B, T]
  targets: number[]; // [B*T]
  weights: number[]; // [B*T]
}

/** BOS question answer EOS, right-padded to the longest in the batch; loss on answer + EOS. */
export function makeBatch(samples: Sample[]): Batch {
  const seqs = samples.map((s) => {
    const q = encodeChars(s.question);
    return { ids: [BOS_ID, ...q, ...encodeChars(s.answer), EOS_ID], answerFrom: 1 + q.length };
  });
  const seqLen = Math.max(...seqs.map((s) => s.ids.length)) - 1;
  const inputs: number[][] = [];
  const targets: number[] = [];
  const weights: number[] = [];
  for (const { ids, answerFrom } of seqs) {
    const row: number[] = [];
    for (let t = 0; t < seqLen; t++) {
      row.push(ids[t] ?? PAD_ID);
      targets.push(ids[t + 1] ?? PAD_ID);
      // position t predicts token t+1: weighted when t+1 is an answer token or the EOS
      weights.push(t + 1 >= answerFrom && t + 1 < ids.length ? 1 : 0);
    }
    inputs.push(row);
  }
  return { inputs, targets, weights };
}

function learningRateAt(step: number, o: TrainOptions): number {
  const warmup = o.warmup ?? Math.max(1, Math.floor(o.steps / 20));
  if (step < warmup) return (o.learningRate * (step + 1)) / warmup;
  const progress = (step - warmup) / Math.max(1, o.steps - warmup);
  return o.learningRate * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Trains in place; returns the logged mean losses (one per log interval). */
export async function train(p: ZooParams, o: TrainOptions): Promise<{ step: number; loss: number }[]> {
  const optimizer = tf.train.adam(o.learningRate, 0.9, 0.98, 1e-8);
  // AdamOptimizer reads its learningRate field on every update; tfjs has no scheduler.
  const lrField = optimizer as unknown as { learningRate: number };
  const constants = new Map<string, PassConstants>();
  const logEvery = o.logEvery ?? 50;
  const log: { step: number; loss: number }[] = [];
  let sum = 0;
  let count = 0;
  try {
    for (let step = 0; step < o.steps; step++) {
      const batch = makeBatch(Array.from({ length: o.batchSize }, () => o.sample()));
      const key = `${batch.inputs.length}x${batch.inputs[0]!.length}`;
      let k = constants.get(key);
      if (!k) {
        k = passConstants(p.shape, batch.inputs.length, batch.inputs[0]!.length);
        constants.set(key, k);
      }
      lrField.learningRate = learningRateAt(step, o);
      const pass = k;
      const loss = optimizer.minimize(
        () => maskedCrossEntropy(forwardLogits(p, batch.inputs, pass), batch.targets, batch.weights),
        true,
        o.variables,
      );
      sum += loss!.dataSync()[0]!;
      loss!.dispose();
      count++;
      if ((step + 1) % logEvery === 0 || step === o.steps - 1) {
        const entry = { step: step + 1, loss: sum / count };
        log.push(entry);
        o.onLog?.(entry.step, entry.loss);
        sum = 0;
        count = 0;
        // Let the event loop breathe (progress output, signals) between log intervals.
        await new Promise((r) => setImmediate(r));
      }
    }
  } finally {
    optimizer.dispose();
    for (const k of constants.values()) {
      k.cos.dispose();
      k.sin.dispose();
      k.mask.dispose();
    }
  }
  return log;
}

/** Greedy answers for a batch of questions (no KV cache: the sequences are short). */
export function greedyAnswers(p: ZooParams, questions: string[], maxNewTokens: number): string[] {
  const rows = questions.map((q) => [BOS_ID, ...encodeChars(q)]);
  const done = rows.map(() => false);
  const answers = rows.map(() => [] as number[]);
  for (let step = 0; step < maxNewTokens && done.some((d) => !d); step++) {
    const lengths = rows.map((r) => r.length);
    const seqLen = Math.max(...lengths);
    const padded = rows.map((r) => [...r, ...Array<number>(seqLen - r.length).fill(PAD_ID)]);
    const k = passConstants(p.shape, rows.length, seqLen);
    const logits = tf.tidy(() => forwardLogits(p, padded, k));
    const v = p.shape.vocabSize;
    const data = logits.dataSync();
    logits.dispose();
    k.cos.dispose();
    k.sin.dispose();
    k.mask.dispose();
    rows.forEach((r, b) => {
      if (done[b]) return;
      const o = (b * seqLen + lengths[b]! - 1) * v;
      let best = 0;
      for (let i = 1; i < v; i++) if (data[o + i]! > data[o + best]!) best = i;
      if (best === EOS_ID) {
        done[b] = true;
        return;
      }
      answers[b]!.push(best);
      r.push(best);
    });
  }
  return answers.map(decodeIds);
}
