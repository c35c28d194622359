// The worker-thread path of the task-vector kernels gives the same bytes as the serial one.
import test from 'ava';
import { mergeArrays } from '../experts/methods/in-memory.js';
import { PARALLEL_MIN_ELEMENTS, closeMergeWorkers, parallelRuns, setMergeThreads } from '../experts/methods/pool.js';
import { breadcrumbsTies } from '../experts/methods/breadcrumbs-ties.js';
import { dareTies } from '../experts/methods/dare-ties.js';
import { ties } from '../experts/methods/ties.js';

test.after.always(async () => {
  setMergeThreads(1);
  await closeMergeWorkers();
});

const n = PARALLEL_MIN_ELEMENTS + 4096 * 3; // just above the threshold, rows of 4096
const fill = (seed: number, around?: Float32Array) => {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // Quantised values: many equal magnitudes at the thresholds.
    const r = Math.round((s / 2 ** 32 - 0.5) * 256) / 2048;
    out[i] = around ? around[i]! + r : r;
  }
  return out;
};

test.serial('ties, dare_ties and breadcrumbs_ties (rescaled): 3 worker threads = serial, byte for byte', async (t) => {
  const base = fill(1);
  const models = [fill(2, base), fill(3, base), fill(4, base)];
  const cases = [
    { method: ties, perModel: { weight: 1, density: 0.4 }, global: {} },
    { method: dareTies, perModel: { weight: 0.8, density: 0.3 }, global: {} },
    { method: breadcrumbsTies, perModel: { weight: 1, density: 0.5, gamma: 0.02 }, global: { rescale: true } },
  ];
  for (const c of cases) {
    const run = () =>
      mergeArrays(c.method, { base, models, shape: [n / 4096, 4096], perModel: models.map(() => c.perModel), global: c.global, seed: 9, chunkSize: 1 << 18 });
    setMergeThreads(1);
    const serial = await run();
    setMergeThreads(3);
    const before = parallelRuns;
    const parallel = await run();
    t.is(parallelRuns, before + 1, 'the worker path ran');
    // Buffer.equals: ava's deepEqual on megabytes is slow.
    t.true(Buffer.from(parallel.buffer).equals(Buffer.from(serial.buffer)), c.method.name);
    t.true(serial.some((v, i) => v !== base[i]), `${c.method.name} changed something`);
  }
});
