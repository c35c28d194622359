// The label trainer on synthetic router inputs: separable data is routed perfectly on
// held-out sequences; the held-out split is stratified per expert and seeded (same seed,
// same gates); the load-balancing term (Switch/Mixtral aux loss) moves tokens off an
// expert that the labels alone would give almost everything.
import test from 'ava';
import { initBackend } from '../core/backend.js';
import { Rng } from '../core/rng.js';
import { holdoutSequences, routingAccuracy, trainLabelGate, type LabelData } from '../routers/learned/label-trainer.js';

const D = 8;

function data(labelOf: (seq: number) => number, signal: number, seqs: number, perSeq: number, seed: number): LabelData {
  const rng = new Rng(seed);
  const n = seqs * perSeq;
  const x = new Float32Array(n * D);
  const labels = new Int32Array(n);
  const sequences = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.floor(i / perSeq);
    const e = labelOf(s);
    labels[i] = e;
    sequences[i] = s;
    for (let k = 0; k < D; k++) x[i * D + k] = rng.normal() * 0.3;
    x[i * D] = 1; // a constant feature: lets a router without bias prefer one expert overall
    x[i * D + 1 + e] += signal;
  }
  return { x, labels, sequences };
}

const OPTS = { epochs: 150, lr: 0.05, balance: 0, holdout: 0.25, patience: 20, expertsPerToken: 1 };

test.before(async () => {
  await initBackend();
});

test('separable data: held-out accuracy 1, better than its mean-vector init or equal; same seed, same gates', (t) => {
  const d = data((s) => s % 4, 1.5, 40, 6, 1);
  const a = trainLabelGate(d, 4, D, undefined, OPTS, new Rng(7));
  const b = trainLabelGate(d, 4, D, undefined, OPTS, new Rng(7));
  t.is(a.heldOutAccuracy, 1);
  t.true(a.heldOutAccuracy! >= a.initialHeldOutAccuracy!);
  t.deepEqual(a.weights, b.weights);
  t.true(a.steps <= OPTS.epochs && a.bestStep >= 1);
});

test('the held-out split keeps sequences whole, takes round(25%) of each expert\'s sequences, and depends on the seed', (t) => {
  const d = data((s) => s % 4, 1, 40, 3, 1);
  const held = holdoutSequences(d.labels, d.sequences, 0.25, new Rng(1));
  t.is(held.size, 4 * Math.round(0.25 * 10));
  for (let e = 0; e < 4; e++) t.is([...held].filter((s) => s % 4 === e).length, 3);
  t.notDeepEqual([...held].sort(), [...holdoutSequences(d.labels, d.sequences, 0.25, new Rng(2))].sort());
  t.is(holdoutSequences(d.labels, d.sequences, 0, new Rng(1)).size, 0);
});

test('the load-balancing term spreads tokens when the labels favour one expert', (t) => {
  // 85% of the sequences belong to expert 0 and the signal is weak: cross-entropy alone sends nearly everything there.
  const d = data((s) => (s % 20 < 17 ? 0 : 1 + (s % 3)), 0.3, 60, 5, 3);
  const all = Array.from({ length: d.labels.length }, (_, i) => i);
  const load0 = (w: Float32Array) => {
    let n = 0;
    for (const i of all) {
      let best = 0;
      let bestV = -Infinity;
      for (let e = 0; e < 4; e++) {
        let v = 0;
        for (let k = 0; k < D; k++) v += d.x[i * D + k]! * w[e * D + k]!;
        if (v > bestV) [best, bestV] = [e, v];
      }
      if (best === 0) n++;
    }
    return n / all.length;
  };
  const plain = trainLabelGate(d, 4, D, undefined, { ...OPTS, holdout: 0, epochs: 150 }, new Rng(1));
  const balanced = trainLabelGate(d, 4, D, undefined, { ...OPTS, holdout: 0, epochs: 150, balance: 1 }, new Rng(1));
  t.log(`expert 0 load: ${load0(plain.weights).toFixed(3)} without, ${load0(balanced.weights).toFixed(3)} with the balance term; accuracy ${routingAccuracy(plain.weights, 4, D, d, all).toFixed(3)} / ${routingAccuracy(balanced.weights, 4, D, d, all).toFixed(3)}`);
  t.true(load0(plain.weights) > 0.9);
  t.true(load0(balanced.weights) < load0(plain.weights) - 0.1);
});
