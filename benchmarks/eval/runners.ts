// One runner per task type: build the requests for every sample, send them to the
// scorer, turn the answers into per-sample metric values, aggregate with stderr.
import { Rng } from '../../core/rng.js';
import type { Sample } from './data.js';
import { bitsPerByte, bootstrapStderr, exactMatch, extractAnswer, mean, meanStderr, pickChoice, weightedPerplexity, type Weighted } from './metrics.js';
import { buildContext, type FewshotPool } from './prompts.js';
import type { Scorer } from './scorer.js';
import type { MetricName } from './suite.js';
import type { EvalTask } from './task.js';

export interface MetricValue {
  value: number;
  stderr: number | null;
}

export interface TaskRun {
  n: number;
  metrics: Partial<Record<MetricName, MetricValue>>;
  /** Per sample: what was compared (kept for the report's examples and for debugging). */
  samples: Record<string, unknown>[];
}

export interface RunContext {
  task: EvalTask;
  samples: Sample[];
  pool: FewshotPool;
  seed: number;
  scorer: Scorer;
  onProgress?: (done: number, total: number) => void;
}

function contextFor(c: RunContext, row: number): { context: string; chat: boolean } {
  const text = buildContext(c.task, c.samples[row]!, row, c.pool, c.seed);
  return c.task.chatTemplate ? { context: c.scorer.chatPrompt(text), chat: true } : { context: text, chat: false };
}

function meanMetric(values: number[]): MetricValue {
  return { value: mean(values), stderr: meanStderr(values) };
}

async function runMultipleChoice(c: RunContext): Promise<TaskRun> {
  const { task } = c;
  const prompts = c.samples.map((s, row) => {
    const { context, chat } = contextFor(c, row);
    const choices = task.docs.choices!(s, row);
    const gold = task.docs.target(s, row) as number;
    return { context, chat, choices, gold };
  });
  // With a chat template the choice follows the generation prompt directly.
  const requests = prompts.flatMap((p) => p.choices.map((choice) => ({ context: p.context, continuation: (p.chat ? '' : task.targetDelimiter) + choice, chat: p.chat })));
  const total = requests.length;
  const answers = await c.scorer.logLikelihood(requests, (done) => c.onProgress?.(done, total));
  let k = 0;
  const acc: number[] = [];
  const accNorm: number[] = [];
  const samples = prompts.map((p, row) => {
    const lls = p.choices.map(() => answers[k++]!.logprob);
    const pick = pickChoice(lls, p.choices);
    acc.push(pick.acc === p.gold ? 1 : 0);
    accNorm.push(pick.accNorm === p.gold ? 1 : 0);
    return { row, gold: p.gold, loglikelihoods: lls, pred: pick.acc, pred_norm: pick.accNorm };
  });
  const metrics: TaskRun['metrics'] = {};
  if (task.metrics.includes('acc')) metrics.acc = meanMetric(acc);
  if (task.metrics.includes('acc_norm')) metrics.acc_norm = meanMetric(accNorm);
  return { n: samples.length, metrics, samples };
}

async function runGenerate(c: RunContext): Promise<TaskRun> {
  const { task } = c;
  const rng = new Rng(c.seed).derive(`generate/${task.name}`);
  const requests = c.samples.map((_, row) => {
    const { context, chat } = contextFor(c, row);
    // A seed per row, drawn in row order: sampling repeats exactly for a suite seed.
    return { context, chat, until: task.stop, maxNewTokens: task.maxNewTokens, temperature: task.temperature, topP: task.topP, seed: rng.nextUint32() };
  });
  const total = requests.length;
  const outputs = await c.scorer.generate(requests, (done) => c.onProgress?.(done, total));
  const em: number[] = [];
  const options = { ignoreCase: task.ignoreCase, ignorePunctuation: task.ignorePunctuation, regexesToIgnore: task.regexesToIgnore };
  const samples = c.samples.map((s, row) => {
    const reference = String(task.docs.target(s, row));
    const output = outputs[row]!;
    const extracted = extractAnswer(output, task.regex);
    const match = exactMatch(extracted, reference, options);
    em.push(match);
    return { row, output, extracted, reference, exact_match: match };
  });
  return { n: samples.length, metrics: { exact_match: meanMetric(em) }, samples };
}

async function runPerplexity(c: RunContext): Promise<TaskRun> {
  const { task } = c;
  const texts = c.samples.map((s, row) => task.docs.text(s, row));
  const total = texts.length;
  const scored = await c.scorer.logLikelihoodRolling(texts, (done) => c.onProgress?.(done, total));
  const byToken: Weighted[] = scored.map((r) => ({ logprob: r.logprob, weight: r.tokens }));
  const byByte: Weighted[] = scored.map((r, i) => ({ logprob: r.logprob, weight: Buffer.byteLength(texts[i]!, 'utf8') }));
  const seed = c.seed;
  const metrics: TaskRun['metrics'] = {};
  if (task.metrics.includes('token_perplexity')) metrics.token_perplexity = { value: weightedPerplexity(byToken), stderr: bootstrapStderr(byToken, weightedPerplexity, seed) };
  if (task.metrics.includes('byte_perplexity')) metrics.byte_perplexity = { value: weightedPerplexity(byByte), stderr: bootstrapStderr(byByte, weightedPerplexity, seed) };
  if (task.metrics.includes('bits_per_byte')) metrics.bits_per_byte = { value: bitsPerByte(byByte), stderr: bootstrapStderr(byByte, bitsPerByte, seed) };
  const samples = scored.map((r, row) => ({ row, logprob: r.logprob, tokens: r.tokens, bytes: byByte[row]!.weight }));
  return { n: samples.length, metrics, samples };
}

export function runTask(c: RunContext): Promise<TaskRun> {
  switch (c.task.type) {
    case 'multiple_choice':
      return runMultipleChoice(c);
    case 'generate':
      return runGenerate(c);
    case 'perplexity':
      return runPerplexity(c);
  }
}
