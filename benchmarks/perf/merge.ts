// Merge kernels at scale: TIES and DARE-TIES over 4 models of one 64M-element float32 tensor
// (256 MiB per input), streamed in chunks, against a plain memory copy of the same input bytes
// in the same run. Elements/s counts output elements. MOEFORGE_BENCH_MERGE_N overrides the size.
// Held during the merge: the inputs themselves (the bench's stand-in for files) plus one chunk
// per model, the base chunk and the output chunk; no whole-tensor copy per model.
import type { MergeMethod } from '../../core/plugins.js';
import { Rng } from '../../core/rng.js';
import { dareTies } from '../../experts/methods/dare-ties.js';
import { closeMergeWorkers, defaultThreads, setMergeThreads } from '../../experts/methods/pool.js';
import { ties } from '../../experts/methods/ties.js';
import type { PerfSuite } from './run.js';

function fill(out: Float32Array, seed: number, scale: number, around?: Float32Array): void {
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const r = (s / 4294967296 - 0.5) * scale;
    out[i] = around ? around[i]! + r : r;
  }
}

async function timeMerge(method: MergeMethod, base: Float32Array, models: Float32Array[], chunkSize: number): Promise<number> {
  const n = base.length;
  // Readers hand out views, as a reader decoding into a reused buffer would: the kernel is measured.
  const reader = (a: Float32Array) => async (s: number, e: number) => a.subarray(s, e);
  let written = 0;
  const t0 = performance.now();
  await method.mergeTensor(
    {
      tensorName: 'bench',
      role: 'mlp_up',
      layer: 0,
      numLayers: 1,
      shape: [n / 4096, 4096],
      numel: n,
      base: reader(base),
      models: models.map(reader),
      global: {},
      perModel: models.map(() => ({ weight: 1, density: 0.5 })),
      rng: new Rng(1).derive('bench'),
      chunkSize,
    },
    async (_s, v) => {
      written += v.length;
    },
  );
  const ms = performance.now() - t0;
  if (written !== n) throw new Error(`wrote ${written} of ${n}`);
  return ms / 1000;
}

export const suite: PerfSuite = {
  name: 'merge',
  description: 'TIES / DARE-TIES, 4 models × one 64M-element F32 tensor, chunks of 2^20, one thread then worker threads; vs copying the same bytes',
  async run() {
    const n = Number(process.env.MOEFORGE_BENCH_MERGE_N ?? 64 * 1024 * 1024);
    const base = new Float32Array(n);
    fill(base, 1, 0.1);
    const models = [0, 1, 2, 3].map((i) => {
      const m = new Float32Array(n);
      fill(m, 100 + i, 0.01, base);
      return m;
    });
    // Plain memory copy of the same input bytes (5 × n × 4) into one destination buffer.
    const dst = new Float32Array(n);
    const c0 = performance.now();
    for (const src of [base, ...models]) dst.set(src);
    const copyS = (performance.now() - c0) / 1000;
    const chunk = 1 << 20;
    setMergeThreads(1);
    const tiesS = await timeMerge(ties, base, models, chunk);
    const dareS = await timeMerge(dareTies, base, models, chunk);
    const threads = Number(process.env.MOEFORGE_BENCH_THREADS ?? defaultThreads());
    setMergeThreads(threads);
    // Warm the workers (start-up is paid once per process), then measure.
    await timeMerge(ties, base.subarray(0, 1 << 21), models.map((m) => m.subarray(0, 1 << 21)), chunk);
    const tiesW = await timeMerge(ties, base, models, chunk);
    const dareW = await timeMerge(dareTies, base, models, chunk);
    setMergeThreads(1);
    await closeMergeWorkers();
    const mib = (n * 4 * 5) / 2 ** 20;
    return {
      elements: n,
      'input MiB': mib,
      'copy s': copyS,
      'copy GiB/s': mib / 1024 / copyS,
      'ties s': tiesS,
      'ties Melem/s': n / tiesS / 1e6,
      'ties / copy time': tiesS / copyS,
      'dare_ties s': dareS,
      'dare_ties Melem/s': n / dareS / 1e6,
      'dare_ties / copy time': dareS / copyS,
      threads,
      'ties threads s': tiesW,
      'ties threads Melem/s': n / tiesW / 1e6,
      'ties speedup': tiesS / tiesW,
      'dare_ties threads s': dareW,
      'dare_ties threads Melem/s': n / dareW / 1e6,
      'dare_ties speedup': dareS / dareW,
    };
  },
};
