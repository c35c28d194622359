// A sequence-level router for a heterogeneous MoE: softmax regression W [E, dim] on one
// feature vector per sequence (labelled with the expert whose data it is), fitted by
// the label objective's trainer (routers/learned/label-trainer.ts) with each sequence as
// its one "token": mean-vector initialisation on the training split, full-batch Adam,
// held-out sequences stratified per expert, early stopping, best weights kept.
// Features are used raw, not standardised: the exported router applies W directly to
// the features the model computes at inference.
import { initBackend } from '../../../core/backend.js';
import { MoeforgeError } from '../../../core/errors.js';
import type { SequenceRouterData, TrainedSequenceRouter } from '../../../core/plugins.js';
import type { Rng } from '../../../core/rng.js';
import { holdoutSequences, meanVectorInit, trainLabelGate, type LabelData } from '../label-trainer.js';
import { parseHeteroGateOptions } from './options.js';

function checkData(data: SequenceRouterData): void {
  const n = data.labels.length;
  if (data.dim < 1 || data.features.length !== n * data.dim) {
    throw new Error(`sequence router: features hold ${data.features.length} values, expected ${n} sequences × dim ${data.dim}`);
  }
  if (data.numExperts < 1 || data.topK < 1 || data.topK > data.numExperts) throw new Error(`sequence router: topK ${data.topK} for ${data.numExperts} experts`);
  const counts = new Array<number>(data.numExperts).fill(0);
  for (const l of data.labels) {
    if (!(l >= 0 && l < data.numExperts)) throw new Error(`sequence router: label ${l} outside 0..${data.numExperts - 1}`);
    counts[l]!++;
  }
  const empty = counts.indexOf(0);
  if (empty >= 0) throw new MoeforgeError('invalid_data', 'the sequence router needs training sequences for every expert; this one has none', { path: `experts[${empty}]` });
  for (const v of data.features) if (!Number.isFinite(v)) throw new MoeforgeError('invalid_data', 'a sequence feature is not finite (NaN or infinity)', { path: 'gate' });
}

const fmt = (v: number) => v.toFixed(2);

export async function trainSequenceRouter(data: SequenceRouterData, options: Record<string, unknown>, rng: Rng): Promise<TrainedSequenceRouter> {
  const o = parseHeteroGateOptions(options);
  checkData(data);
  await initBackend();
  const n = data.labels.length;
  const sequences = Int32Array.from({ length: n }, (_, i) => i);
  const label: LabelData = { x: data.features, labels: data.labels, sequences };
  // One expert: every sequence goes to it whatever W is (and a one-class softmax has nothing to fit).
  if (data.numExperts === 1) {
    const all = Array.from({ length: n }, (_, i) => i);
    return { weight: meanVectorInit(label, 1, data.dim, all), report: [`sequence router: one expert, every sequence routed to it (${n} sequences)`] };
  }
  const r = trainLabelGate(label, data.numExperts, data.dim, undefined, { ...o, expertsPerToken: data.topK }, rng);
  // trainLabelGate draws its split with holdoutSequences from the same rng: recomputed for the count.
  const held = holdoutSequences(data.labels, sequences, o.holdout, rng).size;
  const line =
    r.heldOutAccuracy === null
      ? `sequence router: training accuracy ${fmt(r.trainAccuracy)} on ${n} sequences (none held out), ${r.steps} steps`
      : `sequence router: held-out accuracy ${fmt(r.heldOutAccuracy)} (initial ${fmt(r.initialHeldOutAccuracy!)}) on ${held} sequences, ${r.steps} steps`;
  return { weight: r.weights, report: [line] };
}
